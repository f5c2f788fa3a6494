import { describe, expect, it } from 'vitest';
import { Roster, diffRosters } from '../../src/roster.js';
import { member, presence } from './helpers.js';

describe('Roster', () => {
  it('is seeded from a snapshot, keyed by connId', () => {
    const roster = new Roster();
    roster.reset([member('c1', 'alice'), member('c2', 'bob')]);
    expect(roster.size).toBe(2);
    expect(roster.get('c2')?.userId).toBe('bob');
    roster.reset([member('c3', 'carol')]);
    expect([...roster.snapshot().keys()]).toEqual(['c3']);
  });

  it('applies join, update, leave and expire', () => {
    const roster = new Roster();
    expect(roster.apply(presence({ type: 'join', roomId: 'r', userId: 'alice', connId: 'c1', state: { a: 1 }, epoch: 1 }))).toBe(true);
    expect(roster.apply(presence({ type: 'join', roomId: 'r', userId: 'bob', connId: 'c2', epoch: 1, ts: 5 }))).toBe(true);
    expect(roster.get('c2')).toEqual({ connId: 'c2', userId: 'bob', state: {}, epoch: 1, lastSeen: 5 });

    expect(roster.apply(presence({ type: 'update', roomId: 'r', userId: 'alice', connId: 'c1', state: { a: 2 }, epoch: 2 }))).toBe(true);
    expect(roster.get('c1')?.state).toEqual({ a: 2 });
    expect(roster.get('c1')?.epoch).toBe(2);

    expect(roster.apply(presence({ type: 'leave', roomId: 'r', userId: 'bob', connId: 'c2' }))).toBe(true);
    expect(roster.get('c2')).toBeUndefined();
    expect(roster.apply(presence({ type: 'expire', roomId: 'r', userId: 'alice', connId: 'c1' }))).toBe(true);
    expect(roster.size).toBe(0);
    // Removing someone who is not there changes nothing.
    expect(roster.apply(presence({ type: 'leave', roomId: 'r', userId: 'alice', connId: 'c1' }))).toBe(false);
  });

  it('ignores an update older than the state it holds', () => {
    const roster = new Roster();
    roster.reset([member('c1', 'alice', { v: 'new' }, 5)]);
    expect(roster.apply(presence({ type: 'update', roomId: 'r', userId: 'alice', connId: 'c1', state: { v: 'old' }, epoch: 4 }))).toBe(false);
    expect(roster.get('c1')?.state).toEqual({ v: 'new' });
    expect(roster.apply(presence({ type: 'join', roomId: 'r', userId: 'alice', connId: 'c1', state: { v: 'older' }, epoch: 1 }))).toBe(false);
    expect(roster.get('c1')?.epoch).toBe(5);
  });

  it('keeps the state when an update carries none', () => {
    const roster = new Roster();
    roster.reset([member('c1', 'alice', { keep: true }, 1)]);
    roster.apply(presence({ type: 'update', roomId: 'r', userId: 'alice', connId: 'c1', epoch: 2 }));
    expect(roster.get('c1')).toMatchObject({ state: { keep: true }, epoch: 2 });
  });

  it('adds a member on an update whose join it missed', () => {
    const roster = new Roster();
    roster.apply(presence({ type: 'update', roomId: 'r', userId: 'dave', connId: 'c9', state: { x: 1 }, epoch: 3 }));
    expect(roster.get('c9')).toMatchObject({ userId: 'dave', state: { x: 1 }, epoch: 3 });
  });

  it('ignores a leave from an older incarnation of the same connId', () => {
    const roster = new Roster();
    roster.reset([member('c1', 'alice', {}, 4)]);
    expect(roster.apply(presence({ type: 'leave', roomId: 'r', userId: 'alice', connId: 'c1', epoch: 3 }))).toBe(false);
    expect(roster.size).toBe(1);
  });

  it('hands out copies that later changes do not touch', () => {
    const roster = new Roster();
    roster.reset([member('c1', 'alice')]);
    const copy = roster.snapshot();
    roster.apply(presence({ type: 'leave', roomId: 'r', userId: 'alice', connId: 'c1' }));
    expect(copy.size).toBe(1);
    expect(roster.size).toBe(0);
  });

  it('diffs two rosters by connId, ignoring lastSeen and key order', () => {
    const before = new Map([
      ['c1', member('c1', 'alice', { a: 1, b: [1, 2] }, 1, 100)],
      ['c2', member('c2', 'bob')],
      ['c3', member('c3', 'carol', { x: 1 })],
    ]);
    const after = new Map([
      ['c1', member('c1', 'alice', { b: [1, 2], a: 1 }, 1, 999)],
      ['c3', member('c3', 'carol', { x: 2 })],
      ['c4', member('c4', 'dave')],
    ]);
    const diff = diffRosters(before, after);
    expect(diff.joined.map((m) => m.connId)).toEqual(['c4']);
    expect(diff.left.map((m) => m.connId)).toEqual(['c2']);
    expect(diff.updated.map((m) => m.connId)).toEqual(['c3']);
    expect(diffRosters(after, new Map(after))).toEqual({ joined: [], left: [], updated: [] });
  });
});
