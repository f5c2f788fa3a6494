/// <reference path="./rtm-plugin-types.d.ts" />
declare module 'rtm:plugin/kv@0.1.0' {
  /**
   * The value of `key`, if any.
   */
  export function get(key: string): string | undefined;
  /**
   * Sets `key` to `value`, expiring after `ttl-ms` milliseconds when given.
   */
  export function set(key: string, value: string, ttlMs: bigint | undefined): void;
  /**
   * Deletes `key` (of any kind); true if it existed.
   */
  export function del(key: string): boolean;
  /**
   * Adds `by` to the integer at `key` (0 when absent) and returns the new value.
   */
  export function incr(key: string, by: bigint): bigint;
  /**
   * Appends `value` to the list at `key`; when `max-len` is given, keeps only
   * the last `max-len` items, in the same atomic step. Returns the list's
   * length afterwards.
   */
  export function listPush(key: string, value: string, maxLen: number | undefined): bigint;
  /**
   * Items `start..=stop` of the list at `key`; negative indexes count from
   * the end (`-1` is the last item), as in Redis `LRANGE`.
   */
  export function listRange(key: string, start: bigint, stop: bigint): Array<string>;
  /**
   * Keeps only items `start..=stop` of the list at `key` (Redis `LTRIM`).
   */
  export function listTrim(key: string, start: bigint, stop: bigint): void;
  /**
   * The value of `field` in the hash at `key`, if any.
   */
  export function hashGet(key: string, field: string): string | undefined;
  /**
   * Sets `field` in the hash at `key` to `value`.
   */
  export function hashSet(key: string, field: string, value: string): void;
  /**
   * Every field and value of the hash at `key` (empty when absent).
   */
  export function hashGetAll(key: string): Array<[string, string]>;
  export type Error = import('rtm:plugin/types@0.1.0').Error;
}
