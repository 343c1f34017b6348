// sealpost-events: the in-process event bus (server/events.ts) that optional
// plugins subscribe to, e.g. `app.events.on('reading', publish)`.
import fp from 'fastify-plugin';
import { IngestEvents } from '../events.js';

export default fp(
  async (app) => {
    const events = new IngestEvents();
    events.setMaxListeners(100);
    app.decorate('events', events);
    app.addHook('onClose', async () => {
      events.removeAllListeners();
    });
  },
  { name: 'sealpost-events', fastify: '5.x' },
);
