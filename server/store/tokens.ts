import type { InjectionToken } from 'tsyringe';
import type { Pool } from '../pg/client.js';

export const POOL: InjectionToken<Pool> = Symbol('dp.store.Pool');
