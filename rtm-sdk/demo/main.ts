/**
 * The rtm playground: a plain-DOM page over rtm-sdk. It exists to show the
 * SDK's behaviour to a person (and to the e2e test), so it does everything
 * through the public API and logs what the SDK reports.
 */
import {
  RealtimeMessageClient,
  decodeTokenPayload,
  isRtmError,
  type ChatEmits,
  type ChatListens,
  type ChatMessage,
  type ConnectionState,
  type PresenceMember,
  type PresenceState,
} from 'rtm-sdk';

type Client = RealtimeMessageClient<ChatEmits, ChatListens>;

function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`demo: #${id} missing or not a ${type.name}`);
  return element;
}

const ui = {
  connection: byId('connection', HTMLSpanElement),
  joinForm: byId('join-form', HTMLFormElement),
  serverUrl: byId('server-url', HTMLInputElement),
  roomId: byId('room-id', HTMLInputElement),
  userId: byId('user-id', HTMLInputElement),
  tenant: byId('tenant', HTMLInputElement),
  token: byId('token', HTMLInputElement),
  joinBtn: byId('join-btn', HTMLButtonElement),
  leaveBtn: byId('leave-btn', HTMLButtonElement),
  self: byId('self', HTMLParagraphElement),
  error: byId('error', HTMLParagraphElement),
  roster: byId('roster', HTMLUListElement),
  rosterCount: byId('roster-count', HTMLSpanElement),
  stateInput: byId('state-input', HTMLTextAreaElement),
  patchBtn: byId('patch-btn', HTMLButtonElement),
  chatLog: byId('chat-log', HTMLUListElement),
  chatForm: byId('chat-form', HTMLFormElement),
  chatInput: byId('chat-input', HTMLInputElement),
  chatSend: byId('chat-send', HTMLButtonElement),
  events: byId('events-log', HTMLOListElement),
};

const params = new URLSearchParams(location.search);
ui.serverUrl.value = params.get('server') ?? 'http://localhost:3000';
ui.roomId.value = params.get('room') ?? 'lobby';
ui.userId.value = params.get('user') ?? `user-${Math.random().toString(36).slice(2, 6)}`;
ui.tenant.value = params.get('tenant') ?? '';
ui.token.value = params.get('token') ?? '';

let client: Client | undefined;
let currentRoom: string | undefined;
const shownMessages = new Set<string>();

// --- rendering ---------------------------------------------------------------

function logEvent(kind: string, text: string): void {
  const item = document.createElement('li');
  item.dataset['kind'] = kind;
  item.dataset['testid'] = 'event';
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  const label = document.createElement('strong');
  label.textContent = kind;
  item.append(time, ' ', label, ' ', text);
  ui.events.prepend(item);
  while (ui.events.children.length > 200) ui.events.lastElementChild?.remove();
}

function showError(error: unknown): void {
  const text = isRtmError(error) ? `${error.code}: ${error.message}` : String(error);
  ui.error.textContent = text;
  logEvent('error', text);
}

function setConnection(state: ConnectionState): void {
  ui.connection.dataset['state'] = state;
  ui.connection.textContent = state;
}

function setJoined(joined: boolean): void {
  ui.joinBtn.disabled = joined;
  ui.leaveBtn.disabled = !joined;
  ui.patchBtn.disabled = !joined;
  ui.chatSend.disabled = !joined;
  for (const input of [ui.serverUrl, ui.roomId, ui.userId, ui.tenant, ui.token]) input.disabled = joined;
}

function renderRoster(members: ReadonlyMap<string, PresenceMember>): void {
  const mine = currentRoom === undefined ? undefined : client?.self(currentRoom)?.connId;
  const items = [...members.values()]
    .sort((a, b) => a.userId.localeCompare(b.userId) || a.connId.localeCompare(b.connId))
    .map((member) => {
      const item = document.createElement('li');
      item.dataset['testid'] = 'roster-member';
      item.dataset['userId'] = member.userId;
      item.dataset['connId'] = member.connId;
      if (member.connId === mine) item.classList.add('me');
      const name = document.createElement('span');
      name.className = 'user';
      name.textContent = member.connId === mine ? `${member.userId} (you)` : member.userId;
      const state = document.createElement('code');
      state.className = 'state';
      state.dataset['testid'] = 'roster-state';
      state.textContent = JSON.stringify(member.state);
      const epoch = document.createElement('small');
      epoch.textContent = `epoch ${member.epoch}`;
      item.append(name, ' ', state, ' ', epoch);
      return item;
    });
  ui.roster.replaceChildren(...items);
  ui.rosterCount.textContent = String(members.size);
}

function renderMessage(message: ChatMessage): void {
  if (shownMessages.has(message.id)) return;
  shownMessages.add(message.id);
  const item = document.createElement('li');
  item.dataset['testid'] = 'chat-message';
  item.dataset['userId'] = message.userId;
  item.dataset['messageId'] = message.id;
  const who = document.createElement('strong');
  who.textContent = message.userId;
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = message.text;
  item.append(who, ': ', text);
  ui.chatLog.append(item);
  ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
}

function renderSelf(): void {
  const self = currentRoom === undefined ? undefined : client?.self(currentRoom);
  ui.self.textContent = self ? `connId ${self.connId}, epoch ${self.epoch}` : '';
}

/** The state textarea as a JSON object; presence state must be one. */
function readState(): PresenceState {
  const parsed: unknown = JSON.parse(ui.stateInput.value.trim() || '{}');
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('state must be a JSON object');
  }
  return parsed as PresenceState;
}

// --- actions -------------------------------------------------------------------

function createClient(): Client {
  const next: Client = new RealtimeMessageClient<ChatEmits, ChatListens>();
  next.on('connection', (state) => {
    setConnection(state);
    logEvent('connection', state);
  });
  next.on('presence', (event) => {
    logEvent(`presence:${event.type}`, `${event.userId} (${event.connId}) ${event.state ? JSON.stringify(event.state) : ''}`);
  });
  next.on('roster', (roomId, members) => {
    if (roomId === currentRoom) {
      renderRoster(members);
      renderSelf();
    }
  });
  next.on('rejoined', (info) => {
    logEvent('rejoined', `${info.roomId} as ${info.connId} (${info.resumed ? 'resumed' : 'fresh'})`);
    renderSelf();
  });
  next.on('gap', ({ ts }) => {
    logEvent('gap', `broadcasts before ${new Date(ts).toISOString()} may be missing; refetching`);
    // The SDK refetches the roster; chat messages are ours to refetch (shown ones are skipped by id).
    if (currentRoom !== undefined) void loadHistory(next, currentRoom);
  });
  next.on('resynced', ({ roomId, joined, left, updated }) => {
    const names = (members: readonly { userId: string }[]) => members.map((m) => m.userId).join(', ') || '-';
    logEvent('resynced', `${roomId}: joined ${names(joined)}; left ${names(left)}; updated ${names(updated)}`);
  });
  next.on('error', (error) => showError(error));
  next.on('chat:message', (message) => {
    if (message.roomId === currentRoom) renderMessage(message);
    logEvent('chat:message', `${message.userId}: ${message.text}`);
  });
  return next;
}

async function join(): Promise<void> {
  ui.error.textContent = '';
  let state: PresenceState;
  try {
    state = readState();
  } catch (error) {
    showError(error);
    return;
  }
  const roomId = ui.roomId.value.trim();
  const tenant = ui.tenant.value.trim();
  const token = ui.token.value.trim();
  // With auth on, the server takes the user from the token's `sub`; any other userId is forbidden.
  const sub = token === '' ? undefined : decodeTokenPayload(token)?.['sub'];
  if (typeof sub === 'string') ui.userId.value = sub;
  const userId = ui.userId.value.trim();
  ui.joinBtn.disabled = true;
  const next = createClient();
  client = next;
  try {
    await next.connect(ui.serverUrl.value.trim(), {
      connectTimeoutMs: 10_000,
      ...(tenant === '' ? {} : { tenant }),
      ...(token === '' ? {} : { token }),
    });
    currentRoom = roomId;
    const snapshot = await next.join(roomId, userId, state);
    logEvent('joined', `${roomId} as ${snapshot.self.connId}, ${snapshot.members.length} member(s)`);
    setJoined(true);
    renderRoster(next.roster(roomId));
    renderSelf();
    await loadHistory(next, roomId);
  } catch (error) {
    showError(error);
    currentRoom = undefined;
    client = undefined;
    await next.close();
    setJoined(false);
  }
}

async function loadHistory(active: Client, roomId: string): Promise<void> {
  try {
    const { messages } = await active.emit('chat:history', { roomId, limit: 50 });
    for (const message of messages) renderMessage(message);
    logEvent('chat:history', `${messages.length} message(s)`);
  } catch (error) {
    // No chat plugin loaded is a normal setup for a presence-only host.
    if (isRtmError(error, 'unknown_event')) logEvent('chat', 'chat plugin not loaded on this host');
    else showError(error);
  }
}

async function leave(): Promise<void> {
  const active = client;
  const roomId = currentRoom;
  if (!active || roomId === undefined) return;
  try {
    await active.leave(roomId);
    logEvent('left', roomId);
  } catch (error) {
    showError(error);
  }
  await active.close();
  client = undefined;
  currentRoom = undefined;
  shownMessages.clear();
  ui.chatLog.replaceChildren();
  renderRoster(new Map());
  renderSelf();
  setJoined(false);
}

async function patch(): Promise<void> {
  if (!client || currentRoom === undefined) return;
  ui.error.textContent = '';
  try {
    const result = await client.patchState(currentRoom, readState());
    logEvent('patched', `epoch ${result.epoch} ${JSON.stringify(result.state)}`);
    renderSelf();
  } catch (error) {
    showError(error);
  }
}

async function sendChat(): Promise<void> {
  const text = ui.chatInput.value.trim();
  if (!client || currentRoom === undefined || text === '') return;
  const roomId = currentRoom;
  const userId = ui.userId.value.trim();
  try {
    const { id } = await client.emit('chat:message', { roomId, text });
    ui.chatInput.value = '';
    // The broadcast normally shows it; this covers a host that skips the sender.
    renderMessage({ id, roomId, userId, text, ts: Date.now() });
    logEvent('chat:sent', `${id}`);
  } catch (error) {
    showError(error);
  }
}

ui.joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  void join();
});
ui.leaveBtn.addEventListener('click', () => void leave());
ui.patchBtn.addEventListener('click', () => void patch());
ui.chatForm.addEventListener('submit', (event) => {
  event.preventDefault();
  void sendChat();
});
window.addEventListener('beforeunload', () => void client?.close());

setConnection('idle');
if (params.get('autojoin') === '1') void join();
