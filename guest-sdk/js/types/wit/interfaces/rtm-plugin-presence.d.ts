/// <reference path="./rtm-plugin-types.d.ts" />
declare module 'rtm:plugin/presence@0.1.0' {
  /**
   * Every live registration in `room`, on every node.
   */
  export function snapshot(room: string): Array<Member>;
  export type Error = import('rtm:plugin/types@0.1.0').Error;
  /**
   * One live registration in a room.
   */
  export interface Member {
    connId: string,
    userId: string,
    /**
     * The member's state object, serialized as JSON.
     */
    stateJson: string,
    epoch: bigint,
    /**
     * Milliseconds since the Unix epoch.
     */
    lastSeen: bigint,
  }
}
