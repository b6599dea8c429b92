import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PORT: 3000,
      HOST: '127.0.0.1',
      DATA_DIR: './data',
      DATABASE_POOL_SIZE: 10,
      CORS_ORIGINS: [],
      RATE_LIMIT_PER_MINUTE: 600,
      WEBHOOK_ALLOW_PRIVATE: false,
      LOG_LEVEL: 'info',
      MIGRATE_ON_START: true,
      TRUST_PROXY: false,
    });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.ADMIN_TOKEN).toBeUndefined();
  });

  it('parses lists, numbers and flags', () => {
    const config = loadConfig({
      PORT: '8080',
      CORS_ORIGINS: 'https://a.example, https://b.example,',
      RATE_LIMIT_PER_MINUTE: '0',
      WEBHOOK_ALLOW_PRIVATE: 'true',
      MIGRATE_ON_START: 'false',
      DATABASE_URL: 'postgres://u@localhost:5432/db',
    });
    expect(config.PORT).toBe(8080);
    expect(config.CORS_ORIGINS).toEqual(['https://a.example', 'https://b.example']);
    expect(config.RATE_LIMIT_PER_MINUTE).toBe(0);
    expect(config.WEBHOOK_ALLOW_PRIVATE).toBe(true);
    expect(config.MIGRATE_ON_START).toBe(false);
    expect(config.DATABASE_URL).toBe('postgres://u@localhost:5432/db');
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, loopback' }).TRUST_PROXY).toEqual([
      '10.0.0.0/8',
      'loopback',
    ]);
    expect(loadConfig({ TRUST_PROXY: 'true' }).TRUST_PROXY).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '0' }).TRUST_PROXY).toBe(false);
  });

  it('names every bad variable', () => {
    const bad = {
      PORT: 'eighty',
      DATABASE_URL: 'mysql://x',
      LOG_LEVEL: 'loud',
      ADMIN_TOKEN: 'short',
      RATE_LIMIT_PER_MINUTE: '-1',
      // Fastify trusts no hop of a count: every client would get the proxy's address.
      TRUST_PROXY: '1',
    };
    let error: unknown;
    try {
      loadConfig(bad);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    for (const name of Object.keys(bad)) expect(message).toContain(name);
  });

  it('treats empty optional values as unset', () => {
    const config = loadConfig({ DATABASE_URL: '', ADMIN_TOKEN: '' });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.ADMIN_TOKEN).toBeUndefined();
  });
});
