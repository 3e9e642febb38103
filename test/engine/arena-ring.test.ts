import { expect, test } from 'vitest';
import { ArenaRing } from '../../server/engine/arena-ring.js';

test('pieces come from the ring in turn and its room comes back as they are released, in any order', () => {
  const ring = new ArenaRing(100);
  const a = ring.take(40);
  const b = ring.take(40);
  expect(a.slot).toBeDefined();
  expect(b.slot).toBeDefined();
  a.buf.fill(1);
  b.buf.fill(2);
  // Only 20 bytes left at the head and nothing free before the tail: a buffer of its own.
  const c = ring.take(30);
  expect(c.slot).toBeUndefined();
  // b released first: the tail (a) still holds, so nothing frees yet.
  ring.release(b);
  expect(ring.take(30).slot).toBeUndefined();
  ring.release(a);
  // Both freed: the ring starts over, and a piece never overlaps one still in use.
  const d = ring.take(60);
  const e = ring.take(30);
  expect(d.slot).toBeDefined();
  expect(e.slot).toBeDefined();
  d.buf.fill(3);
  e.buf.fill(4);
  expect(d.buf.every((x) => x === 3)).toBe(true);
  // Wraps to the start once the tail has moved past the piece's size.
  ring.release(d);
  const f = ring.take(50);
  expect(f.slot?.start).toBe(0);
  f.buf.fill(5);
  expect(e.buf.every((x) => x === 4)).toBe(true);
  // Full between head (50) and tail (60): a buffer of its own.
  expect(ring.take(20).slot).toBeUndefined();
});

test('a piece larger than the ring gets a buffer of its own, reported when released', () => {
  const dropped: number[] = [];
  const ring = new ArenaRing(100, (n) => dropped.push(n));
  const big = ring.take(150);
  expect(big.slot).toBeUndefined();
  expect(big.buf.length).toBe(150);
  ring.release(big);
  expect(dropped).toEqual([150]);
});
