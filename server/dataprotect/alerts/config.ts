import { hostname } from 'node:os';
import { parseSmtpUrl, smtpMailer } from '../restore/mailer.js';
import { parseRecipients, type AlertConfig } from './monitor.js';

/**
 * The alerting of an installation from its environment: DP_SMTP_URL (the relay, smtp://[user:pass@]host[:port]),
 * DP_ALERT_RECIPIENTS (the administrators' addresses), DP_ALERT_FROM (default bm-dataprotect@<host name>).
 * Without a relay or recipients, incidents are still recorded, and the log says that nobody is told.
 */
export function alertConfigFromEnv(env: NodeJS.ProcessEnv, log?: AlertConfig['log']): AlertConfig {
  const recipients = parseRecipients(env.DP_ALERT_RECIPIENTS);
  const mailer = env.DP_SMTP_URL ? smtpMailer(parseSmtpUrl(env.DP_SMTP_URL)) : null;
  if (!mailer || recipients.length === 0) {
    log?.info(`alerts are recorded but not mailed: set ${[!mailer && 'DP_SMTP_URL', recipients.length === 0 && 'DP_ALERT_RECIPIENTS'].filter(Boolean).join(' and ')}`);
  }
  return { mailer, recipients, from: env.DP_ALERT_FROM || `bm-dataprotect@${hostname()}`, log };
}

/** DP_ALERT_INTERVAL_SECONDS, default one minute. */
export function alertIntervalMs(env: NodeJS.ProcessEnv): number {
  const v = env.DP_ALERT_INTERVAL_SECONDS;
  const n = v === undefined || v === '' ? 60 : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`DP_ALERT_INTERVAL_SECONDS=${v}: expected a number of seconds > 0`);
  return n * 1000;
}
