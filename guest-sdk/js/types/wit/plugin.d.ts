/// <reference path="./interfaces/rtm-plugin-clock.d.ts" />
/// <reference path="./interfaces/rtm-plugin-emit.d.ts" />
/// <reference path="./interfaces/rtm-plugin-handler.d.ts" />
/// <reference path="./interfaces/rtm-plugin-kv.d.ts" />
/// <reference path="./interfaces/rtm-plugin-log.d.ts" />
/// <reference path="./interfaces/rtm-plugin-presence.d.ts" />
/// <reference path="./interfaces/rtm-plugin-rooms.d.ts" />
/// <reference path="./interfaces/rtm-plugin-types.d.ts" />
declare module 'rtm:plugin/plugin@0.1.0' {
  export type * as RtmPluginClock010 from 'rtm:plugin/clock@0.1.0'; // import rtm:plugin/clock@0.1.0
  export type * as RtmPluginEmit010 from 'rtm:plugin/emit@0.1.0'; // import rtm:plugin/emit@0.1.0
  export type * as RtmPluginKv010 from 'rtm:plugin/kv@0.1.0'; // import rtm:plugin/kv@0.1.0
  export type * as RtmPluginLog010 from 'rtm:plugin/log@0.1.0'; // import rtm:plugin/log@0.1.0
  export type * as RtmPluginPresence010 from 'rtm:plugin/presence@0.1.0'; // import rtm:plugin/presence@0.1.0
  export type * as RtmPluginRooms010 from 'rtm:plugin/rooms@0.1.0'; // import rtm:plugin/rooms@0.1.0
  export type * as RtmPluginTypes010 from 'rtm:plugin/types@0.1.0'; // import rtm:plugin/types@0.1.0
  export * as handler from 'rtm:plugin/handler@0.1.0'; // export rtm:plugin/handler@0.1.0
}
