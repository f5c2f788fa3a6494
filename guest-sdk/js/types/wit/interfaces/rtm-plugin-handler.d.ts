/// <reference path="./rtm-plugin-types.d.ts" />
declare module 'rtm:plugin/handler@0.1.0' {
  /**
   * Called once when the plugin is loaded; must not call host interfaces.
   */
  export function manifest(): PluginManifest;
  /**
   * Handles a client event. `ok(some(json))` becomes the ack's `data`,
   * `ok(none)` an ack without data, `err(e)` an ack `{ ok: false, error: e }`.
   */
  export function onEvent(ctx: EventCtx): Json | undefined;
  /**
   * A socket connected (only called when `hooks` has `connect`).
   */
  export function onConnect(socket: string): void;
  /**
   * A socket disconnected (only called when `hooks` has `disconnect`).
   */
  export function onDisconnect(socket: string, user: string | undefined): void;
  /**
   * A presence event, as broadcast in `presence:event` (only called when
   * `hooks` has `presence`).
   */
  export function onPresence(event: Json): void;
  export type Error = import('rtm:plugin/types@0.1.0').Error;
  export type Json = import('rtm:plugin/types@0.1.0').Json;
  /**
   * Hooks the plugin wants the host to call.
   */
  export interface Hooks {
    /**
     * `on-connect` for every new socket of the tenant.
     */
    connect?: boolean,
    /**
     * `on-disconnect` for every socket of the tenant that goes away.
     */
    disconnect?: boolean,
    /**
     * `on-presence` for every presence event of the tenant.
     */
    presence?: boolean,
  }
  /**
   * Who the plugin is and what it handles.
   */
  export interface PluginManifest {
    /**
     * 1..64 chars of `[A-Za-z0-9_.-]`; unique per tenant; names the kv namespace.
     */
    name: string,
    /**
     * Free-form, shown in `/admin/plugins` (semver recommended).
     */
    version: string,
    /**
     * Event names handled: exact names (`chat:message`) or prefix patterns
     * (`chat:*`). Names are 1..128 chars of `[A-Za-z0-9_.:-]`; `presence:`
     * events and Socket.IO's reserved names cannot be claimed, and no two
     * plugins of a tenant may claim overlapping events.
     */
    events: Array<string>,
    hooks: Hooks,
  }
  /**
   * One client event routed to the plugin.
   */
  export interface EventCtx {
    /**
     * Id of the sending socket.
     */
    socket: string,
    /**
     * The sender's user id, when it has joined presence or authenticated.
     */
    user?: string,
    /**
     * The event name, as sent by the client.
     */
    event: string,
    /**
     * The event's first argument, serialized (`null` when absent).
     */
    payload: Json,
  }
}
