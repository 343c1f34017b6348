// The config sections of the two web pages the server serves, `dashboard`
// (the page at /) and `relay_page` (/relay): each is `false`, `true`, or an
// object, checked at boot (server/config.ts SECTIONS) with messages that name
// the setting. The plugins read the checked values with dashboardConfig and
// relayPageConfig.
import type { ServerConfig } from './config.js';
import { ConfigError } from './errors.js';

export interface DashboardConfig {
  enabled: boolean;
  /** How often the page fetches the device list again. */
  refreshSeconds: number;
}

export const DASHBOARD_DEFAULTS: DashboardConfig = { enabled: true, refreshSeconds: 10 };

export interface RelayPageConfig {
  enabled: boolean;
}

export const RELAY_PAGE_DEFAULTS: RelayPageConfig = { enabled: true };

/**
 * A page's section: a boolean as is, or an object with only `known` settings
 * and `enabled`, when present, a boolean. `page` and `example` go into the
 * message for anything else.
 */
function pageSection(value: unknown, where: string, page: string, example: string, known: string[]): boolean | Record<string, unknown> {
  if (typeof value === 'boolean') return value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`${where} must be false (no ${page}), true, or an object such as ${example}`);
  }
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new ConfigError(`${where} has an unknown setting "${k}" (known: ${known.join(', ')})`);
  if (o.enabled !== undefined && typeof o.enabled !== 'boolean') throw new ConfigError(`${where}.enabled must be true or false`);
  return o;
}

/** The `dashboard` section: `false`, `true`, or {"enabled": bool, "refresh_seconds": 2..3600}. */
export function checkDashboardConfig(value: unknown, where: string): DashboardConfig {
  const o = pageSection(value, where, 'dashboard', '{"enabled": true, "refresh_seconds": 10}', ['enabled', 'refresh_seconds']);
  if (typeof o === 'boolean') return { ...DASHBOARD_DEFAULTS, enabled: o };
  const c = { ...DASHBOARD_DEFAULTS };
  if (o.enabled !== undefined) c.enabled = o.enabled as boolean;
  if (o.refresh_seconds !== undefined) {
    const r = o.refresh_seconds;
    if (typeof r !== 'number' || !Number.isInteger(r) || r < 2 || r > 3600) {
      throw new ConfigError(`${where}.refresh_seconds must be a whole number from 2 to 3600, got ${JSON.stringify(r)}`);
    }
    c.refreshSeconds = r;
  }
  return c;
}

/** The `relay_page` section: `false`, `true`, or {"enabled": bool}. */
export function checkRelayPageConfig(value: unknown, where: string): RelayPageConfig {
  const o = pageSection(value, where, 'relay page', '{"enabled": true}', ['enabled']);
  if (typeof o === 'boolean') return { enabled: o };
  return { enabled: (o.enabled as boolean | undefined) ?? true };
}

export const dashboardConfig = (config: ServerConfig): DashboardConfig => (config.sections.dashboard as DashboardConfig | undefined) ?? DASHBOARD_DEFAULTS;

export const relayPageConfig = (config: ServerConfig): RelayPageConfig => (config.sections.relay_page as RelayPageConfig | undefined) ?? RELAY_PAGE_DEFAULTS;
