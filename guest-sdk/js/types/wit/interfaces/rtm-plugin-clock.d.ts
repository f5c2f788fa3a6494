declare module 'rtm:plugin/clock@0.1.0' {
  /**
   * Milliseconds since the Unix epoch.
   */
  export function nowMs(): bigint;
}
