// Test guest: every `spin:*` event loops forever, so only the host's CPU
// deadline or wall-clock timeout can end it (JS twin of
// plugins/test-guests/spin). Manifest name `spin-js`.

import { definePlugin } from '@rtm/guest';

export const handler = definePlugin({
  name: 'spin-js',
  version: '0.1.0',
  on: {
    'spin:*': () => {
      let n = 0;
      // The loop has an observable effect (n escapes through the throw that
      // never happens), so no engine can decide it is dead code.
      for (;;) {
        n = (n + 1) | 0;
        if (n === -1) throw new Error(`unreachable ${n}`);
      }
    },
  },
});
