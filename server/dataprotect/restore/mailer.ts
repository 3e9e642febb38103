// The SMTP relay send.* restores mail their exports through (BlueMind sends from no-reply@<domain> through the
// installation's relay). Configured by the composition root; tests use a real SMTP server on loopback.

import type { Transporter } from 'nodemailer';

export interface OutgoingMail {
  from: string;
  to: string;
  subject: string;
  text: string;
  attachments: { filename: string; content: string | Buffer; contentType: string }[];
}

export interface Mailer {
  send(mail: OutgoingMail): Promise<void>;
}

export interface SmtpRelay {
  host: string;
  port: number;
  /** STARTTLS is used when the relay offers it, unless false. */
  requireTls?: boolean;
  auth?: { user: string; pass: string };
}

/** `smtp://[user:pass@]host[:port]` (DP_SMTP_URL). */
export function parseSmtpUrl(url: string): SmtpRelay {
  const u = new URL(url);
  if (u.protocol !== 'smtp:') throw new Error(`the SMTP relay must be an smtp:// URL (got ${u.protocol}//)`);
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 25,
    auth: u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : undefined,
  };
}

export function smtpMailer(relay: SmtpRelay): Mailer {
  // nodemailer (some forty modules) loads with the first mail sent, not with every command and agent that
  // composes a mailer and sends nothing.
  let transport: Promise<Transporter> | undefined;
  const open = async () =>
    (await import('nodemailer')).default.createTransport({
      host: relay.host,
      port: relay.port,
      secure: false,
      requireTLS: relay.requireTls ?? false,
      ignoreTLS: relay.requireTls === false,
      auth: relay.auth,
      tls: { rejectUnauthorized: false },
    });
  return {
    async send(mail) {
      try {
        await (await (transport ??= open())).sendMail(mail);
      } catch (e) {
        throw new Error(`sending the export to ${mail.to} through ${relay.host}:${relay.port}: ${(e as Error).message}`);
      }
    },
  };
}
