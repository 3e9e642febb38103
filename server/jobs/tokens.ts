import type { InjectionToken } from 'tsyringe';

/** Identifies this process among the nodes sharing the database (host name and pid by default). */
export const NODE_ID: InjectionToken<string> = Symbol('dp.jobs.NodeId');
