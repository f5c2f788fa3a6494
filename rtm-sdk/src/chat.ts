/**
 * Event maps for the example chat plugin (PROTOCOL.md, "The example chat
 * plugin"), ready to plug into `RealtimeMessageClient<ChatEmits, ChatListens>`.
 * They also serve as a model for typing your own plugin's events.
 */

/** A chat message as the plugin broadcasts and stores it. */
export interface ChatMessage {
  readonly id: string;
  readonly roomId: string;
  readonly userId: string;
  readonly text: string;
  /** Server time, ms since the Unix epoch. */
  readonly ts: number;
}

/** Client→server chat events: payload and the `data` of the ok ack. */
export interface ChatEmits {
  /** Text 1..2000 chars; the sender must have joined `roomId`. */
  'chat:message': { payload: { roomId: string; text: string }; ack: { id: string } };
  /** Oldest first; the plugin keeps the last 100. */
  'chat:history': {
    payload: { roomId: string; limit?: number };
    ack: { messages: ChatMessage[] };
  };
  'chat:typing': { payload: { roomId: string; typing: boolean }; ack: unknown };
}

/** Server→client chat broadcasts. */
export interface ChatListens {
  'chat:message': ChatMessage;
  /** Sent to the room except the typist. */
  'chat:typing': { roomId: string; userId: string; typing: boolean };
}
