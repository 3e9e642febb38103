/** Where repository files live: backends of the engine's Storage interface, and the one way to open a location. */
export { LocalStorage } from './local.js';
export { MemoryStorage } from './memory.js';
export { openStorage, SUPPORTED_LOCATIONS } from './open.js';
