// The command line's composition root: the installation its commands work on is the BlueMind reference host (its
// database from DATABASE_URL, its files under --host-root), and this is the one place that builds it and what the
// commands run over it.

import type { Repository } from '../engine/index.js';
import { parseSmtpUrl, smtpMailer } from '../dataprotect/restore/mailer.js';
import type { RestoreEnv } from '../dataprotect/restore/operations/index.js';
import { DEFAULT_DATABASE_URL } from '../host/connection.js';
import { parseDatabaseUrl, type ConnectionSettings } from '../pg/settings.js';
import type { InstallationPort } from '../host/installation.js';
import { ReferenceHost } from '../host/reference/host.js';
import { referenceInstallation } from '../host/reference/installation.js';
import { SCHEMA_VERSION } from '../host/reference/schema.js';
import { hostLayout } from '../host/reference/layout.js';
import type { PartAgents } from '../dataprotect/generation/part-agents.js';
import { AGENTS_ENV, agentsFromEnvironment, parseAgents, partAgents } from '../agent/config.js';
import { agentsValue, ensureAgentSecret, runningAgents } from './reference-agents.js';

/** DATABASE_URL, default BlueMind's directory database `bj` on the local PostgreSQL. */
export function databaseUrl(): string {
  return process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
}

/** The host's database (DATABASE_URL), for the commands that need only it. */
export function hostDatabase(): ConnectionSettings {
  return parseDatabaseUrl(databaseUrl());
}

export interface InstallationOptions {
  /** The reference host's files (mail spool, archive, file hosting, configuration). */
  hostRoot: string;
}

export interface CliInstallation {
  database: ConnectionSettings;
  host: ReferenceHost;
  /** The host's product version each generation records. */
  productVersion: string;
  /**
   * What a single-entity restore works with over a repository. With `send`, send.* exports go through the SMTP
   * relay at `smtp` (default $DP_SMTP_URL, else smtp://127.0.0.1:25); without, none is set up.
   */
  restoreEnv(repo: Repository, o?: { send?: boolean; smtp?: string }): RestoreEnv;
  /** What a global restore rebuilds. */
  recovery: InstallationPort;
  /**
   * The node agents a generation asks for each server's parts: DP_AGENTS when set, else the reference host's running
   * agents (`host agents start`); none: every part is backed up in this process.
   */
  agents(): Promise<PartAgents | undefined>;
}

export function installation(o: InstallationOptions): CliInstallation {
  const database = hostDatabase();
  const host = new ReferenceHost(o.hostRoot, database);
  return {
    database,
    host,
    productVersion: SCHEMA_VERSION,
    recovery: referenceInstallation(host, SCHEMA_VERSION),
    async agents() {
      if (process.env[AGENTS_ENV]) return agentsFromEnvironment();
      const running = await runningAgents(host.layout);
      if (!running.length) return undefined;
      const env = { ...process.env, ...(await ensureAgentSecret(hostLayout(o.hostRoot))) };
      return partAgents(parseAgents(agentsValue(running)), env);
    },
    restoreEnv: (repo, r = {}) => ({
      repo,
      host,
      mailer: r.send ? smtpMailer(parseSmtpUrl(r.smtp ?? process.env.DP_SMTP_URL ?? 'smtp://127.0.0.1:25')) : null,
    }),
  };
}
