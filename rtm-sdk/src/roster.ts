import type { PresenceEvent, PresenceMember } from './protocol.js';

/**
 * The live member list of one room, keyed by connId.
 *
 * It is seeded from a join snapshot and then kept current from
 * `presence:event` broadcasts. Broadcasts can overtake the join ack (the
 * server broadcasts the caller's own `join` to the room, caller included) and
 * can arrive from several nodes, so {@link Roster.apply} uses the epoch to
 * ignore a `join`/`update` that is older than what the roster already holds,
 * instead of trusting arrival order.
 */
export class Roster {
  private readonly members = new Map<string, PresenceMember>();

  /** Number of members. */
  get size(): number {
    return this.members.size;
  }

  /** The member with this connId, if present. */
  get(connId: string): PresenceMember | undefined {
    return this.members.get(connId);
  }

  /**
   * A copy of the members. A copy, because callbacks may keep it and the
   * roster keeps changing underneath; members themselves are immutable.
   */
  snapshot(): ReadonlyMap<string, PresenceMember> {
    return new Map(this.members);
  }

  /** Replaces everything with a server snapshot (join ack or `presence:snapshot`). */
  reset(snapshot: readonly PresenceMember[]): void {
    this.members.clear();
    for (const member of snapshot) this.members.set(member.connId, member);
  }

  /** Forgets every member, e.g. after leaving the room. */
  clear(): void {
    this.members.clear();
  }

  /**
   * Applies one broadcast. Returns whether the roster changed, so callers
   * only notify `roster` listeners on real changes.
   */
  apply(event: PresenceEvent): boolean {
    const current = this.members.get(event.connId);
    switch (event.type) {
      case 'join':
      case 'update': {
        if (isOlder(event, current)) return false;
        // `info` comes from the member's token; an event without it keeps what we know.
        const info = event.info ?? current?.info;
        const next: PresenceMember = {
          connId: event.connId,
          userId: event.userId,
          // An update without state changed only the epoch; keep what we know.
          state: event.state ?? current?.state ?? {},
          epoch: event.epoch ?? current?.epoch ?? 0,
          lastSeen: event.ts,
          ...(info === undefined ? {} : { info }),
        };
        this.members.set(event.connId, next);
        return true;
      }
      case 'leave':
      case 'expire':
        // A leave that is older than the registration we hold belongs to a
        // previous incarnation of this connId (it left and joined again).
        if (isOlder(event, current)) return false;
        return this.members.delete(event.connId);
    }
  }
}

function isOlder(event: PresenceEvent, current: PresenceMember | undefined): boolean {
  return current !== undefined && event.epoch !== undefined && event.epoch < current.epoch;
}

/** How a roster changed between two copies of it, e.g. across a post-gap resync. */
export interface RosterDiff {
  readonly joined: PresenceMember[];
  readonly left: PresenceMember[];
  readonly updated: PresenceMember[];
}

/**
 * Compares two rosters by connId. A member counts as updated when its
 * userId, state, epoch or info differ; `lastSeen` alone is not a change.
 */
export function diffRosters(
  before: ReadonlyMap<string, PresenceMember>,
  after: ReadonlyMap<string, PresenceMember>,
): RosterDiff {
  const joined: PresenceMember[] = [];
  const left: PresenceMember[] = [];
  const updated: PresenceMember[] = [];
  for (const [connId, member] of after) {
    const old = before.get(connId);
    if (old === undefined) joined.push(member);
    else if (!sameMember(old, member)) updated.push(member);
  }
  for (const [connId, member] of before) {
    if (!after.has(connId)) left.push(member);
  }
  return { joined, left, updated };
}

function sameMember(a: PresenceMember, b: PresenceMember): boolean {
  return a.userId === b.userId && a.epoch === b.epoch && sameJson(a.state, b.state) && sameJson(a.info, b.info);
}

/** Structural equality of JSON values (object key order ignored). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((value, i) => sameJson(value, b[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const ob = b as Record<string, unknown>;
  const oa = a as Record<string, unknown>;
  return ka.every((key) => Object.hasOwn(ob, key) && sameJson(oa[key], ob[key]));
}
