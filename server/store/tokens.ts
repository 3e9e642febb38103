import type { InjectionToken } from 'tsyringe';
import type { Pool } from './db.js';

export const POOL: InjectionToken<Pool> = Symbol('dp.store.Pool');
