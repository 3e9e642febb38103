import type { InjectionToken } from 'tsyringe';

/** Identifies this process among the nodes sharing the database (host name and pid by default). */
export const NODE_ID: InjectionToken<string> = Symbol('dp.jobs.NodeId');

/** Where the files tasks produce (exports to download) are kept; shared between nodes like the repository. */
export const TASK_FILES_DIR: InjectionToken<string> = Symbol('dp.jobs.TaskFilesDir');
