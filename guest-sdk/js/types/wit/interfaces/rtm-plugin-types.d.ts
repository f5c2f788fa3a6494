declare module 'rtm:plugin/types@0.1.0' {
  /**
   * A JSON document, serialized. JSON crosses the component boundary as a
   * string so guests in any language can use their own JSON library.
   */
  export type Json = string;
  /**
   * An expected failure, reported to the client as
   * `{ ok: false, error: { code, message } }`.
   * 
   * `code` is a short snake_case identifier that clients can branch on
   * (for example `invalid_payload`, `not_joined`); `message` is for humans.
   */
  export interface Error {
    code: string,
    message: string,
  }
}
