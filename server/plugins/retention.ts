// sealpost-retention: deletes readings older than the `retention` section's
// readings_days in small batches in the background (server/retention.ts,
// docs/server.md "Retention"), from when the server is ready until it closes.
import fp from 'fastify-plugin';
import { Retention, type RetentionConfig } from '../retention.js';

export default fp(
  async (app) => {
    const config = app.config.sections.retention as RetentionConfig;
    const retention = new Retention(app.storage, config, app.clock, app.log.child({ plugin: 'retention' }));
    app.addHook('onReady', async () => {
      app.log.info({ readingsDays: config.readingsDays, batchRows: config.batchRows, batchDevices: config.batchDevices, pauseMs: config.pauseMs, everyS: config.everyS }, 'retention: deleting old readings in the background');
      retention.start();
    });
    app.addHook('preClose', async () => retention.stop());
  },
  { name: 'sealpost-retention', fastify: '5.x', dependencies: ['sealpost-context', 'sealpost-storage'] },
);
