/// <reference path="./rtm-plugin-types.d.ts" />
declare module 'rtm:plugin/rooms@0.1.0' {
  /**
   * Puts `socket` in `room`.
   */
  export function join(socket: string, room: string): void;
  /**
   * Removes `socket` from `room`.
   */
  export function leave(socket: string, room: string): void;
  /**
   * The ids of the sockets in `room`, on every node.
   */
  export function members(room: string): Array<string>;
  /**
   * Whether `socket` is in `room`. A result rather than a bare bool because
   * the answer may need a backend (the cluster adapter) that can fail.
   */
  export function has(socket: string, room: string): boolean;
  export type Error = import('rtm:plugin/types@0.1.0').Error;
}
