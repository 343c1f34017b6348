// sealpost-mqtt: publishes every new reading to an MQTT broker
// (docs/server.md section 13, topics and payloads in docs/api.md "MQTT").
// Fastify wiring only: the section's check is config.ts, the connection and
// its queue publisher.ts and queue.ts, the messages readings.ts. Event
// listeners only hand readings to the publisher's queue, so the ingest path
// never waits for the broker.
import fp from 'fastify-plugin';
import { redactUrl, type MqttConfig } from './config.js';
import { MqttPublisher } from './publisher.js';
import { ReadingPublisher } from './readings.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The MQTT publisher (sealpost-mqtt), when the mqtt section is configured. */
    mqtt: MqttPublisher;
  }
}

export default fp(
  async (app) => {
    const config = app.config.sections.mqtt as MqttConfig;
    const { connect } = await import('mqtt');
    const log = app.log.child({ plugin: 'mqtt' });
    const publisher = new MqttPublisher(config, connect, log);
    const readings = new ReadingPublisher(publisher, config, app.storage, log, app.config.limits.pageMax);
    app.decorate('mqtt', publisher);
    app.events.on('reading', (r) => readings.reading(r));
    app.events.on('retime', (e) => readings.retime(e));
    app.addHook('onReady', async () => {
      publisher.start();
      log.info({ broker: redactUrl(config.url), topicPrefix: config.topicPrefix, qos: config.qos }, 'mqtt: publishing readings');
    });
    app.addHook('preClose', async () => publisher.close());

    app.get('/v1/mqtt', async () => {
      const s = publisher.stats();
      return {
        connected: s.connected,
        broker: s.broker,
        topic_prefix: config.topicPrefix,
        qos: config.qos,
        queued: s.queued,
        inflight: s.inflight,
        published: s.published,
        dropped: s.dropped,
        failures: s.failures,
        last_error: s.lastError,
      };
    });
  },
  { name: 'sealpost-mqtt', fastify: '5.x', dependencies: ['sealpost-context', 'sealpost-storage', 'sealpost-events'] },
);
