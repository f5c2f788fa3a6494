/**
 * rtm-sdk: a typed client for the rtm realtime host.
 *
 * Start with {@link RealtimeMessageClient}; everything else here is the types
 * it speaks in.
 */
export { RealtimeMessageClient } from './client.js';
export type { ConnectOptions, EmitOptions } from './client.js';
export {
  RtmError,
  isRtmError,
  isProtocolErrorCode,
  PROTOCOL_ERROR_CODES,
} from './errors.js';
export type { ClientErrorCode, ProtocolErrorCode, RtmErrorCode, RtmErrorDetails } from './errors.js';
export type {
  JsonValue,
  PresenceEvent,
  PresenceEventType,
  PresenceMember,
  PresenceState,
  SelfRegistration,
} from './protocol.js';
export { decodeTokenPayload, tokenExpiry } from './auth.js';
export type { TokenProvider } from './auth.js';
export { Roster } from './roster.js';
export { Backoff } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { defaultSocketFactory, namespaceUrl } from './socket.js';
export type { SocketFactory, SocketIoOptions, SocketLike, SocketListener } from './socket.js';
export type {
  ClientEventName,
  ClientEvents,
  ConnectionState,
  EmitMap,
  EmitSpec,
  GapInfo,
  LooseEmits,
  LooseListens,
  PatchResult,
  RejoinInfo,
  ResyncInfo,
  RoomSnapshot,
  TokenRefreshInfo,
  Unsubscribe,
} from './types.js';
export type { ChatEmits, ChatListens, ChatMessage } from './chat.js';
