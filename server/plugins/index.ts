// Where plugins are registered, in order. The core plugins make the ingest
// server; OPTIONAL_PLUGINS is the place for capabilities that build on them
// (the dashboard, MQTT publishing): add an entry { name, enabled, plugin },
// where `enabled(config)` decides from the checked config (e.g. whether its
// section in config.sections is present) and `plugin` is a fastify-plugin
// with a name and `dependencies` on the core plugins it uses
// ('sealpost-storage', 'sealpost-events', ...). They are registered after
// the core, before any plugins passed to buildServer({ plugins }).
import type { FastifyPluginAsync } from 'fastify';
import type { ServerConfig } from '../config.js';
import { dashboardConfig, relayPageConfig } from '../page-config.js';
import admin from './admin.js';
import auth from './auth.js';
import context from './context.js';
import dashboard from './dashboard.js';
import devices from './devices.js';
import edge from './edge.js';
import errors from './errors.js';
import events from './events.js';
import keys from './keys.js';
import mqtt from '../mqtt/plugin.js';
import rateLimit from './rate-limit.js';
import relayPage from './relay-page.js';
import retention from './retention.js';
import storage from './storage.js';
import uplink from './uplink.js';

export interface OptionalPlugin {
  name: string;
  enabled: (config: ServerConfig) => boolean;
  // Plugins take their options from app.config; none are passed.
  plugin: FastifyPluginAsync;
}

export const CORE_PLUGINS = { context, errors, edge, storage, rateLimit, auth, keys, events, uplink, devices, admin };

export const OPTIONAL_PLUGINS: OptionalPlugin[] = [
  { name: 'dashboard', enabled: (config) => dashboardConfig(config).enabled, plugin: dashboard },
  { name: 'mqtt', enabled: (config) => config.sections.mqtt !== undefined, plugin: mqtt },
  { name: 'relay_page', enabled: (config) => relayPageConfig(config).enabled, plugin: relayPage },
  { name: 'retention', enabled: (config) => config.sections.retention != null, plugin: retention },
];
