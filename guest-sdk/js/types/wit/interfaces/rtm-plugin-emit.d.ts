/// <reference path="./rtm-plugin-types.d.ts" />
declare module 'rtm:plugin/emit@0.1.0' {
  /**
   * Emits `event` to one socket.
   */
  export function toSocket(socket: string, event: string, payload: Json): void;
  /**
   * Emits `event` to every socket in `room`, on every node.
   */
  export function toRoom(room: string, event: string, payload: Json): void;
  /**
   * Emits `event` to every socket in `room` except `except` (typically the
   * sender), on every node.
   */
  export function toRoomExcept(room: string, except: string, event: string, payload: Json): void;
  /**
   * Emits `event` to every socket of the tenant, on every node.
   */
  export function broadcast(event: string, payload: Json): void;
  export type Error = import('rtm:plugin/types@0.1.0').Error;
  export type Json = import('rtm:plugin/types@0.1.0').Json;
}
