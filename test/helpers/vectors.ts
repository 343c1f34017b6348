// Loads the committed test vectors (test/vectors/*.json) with their types.
import { readFileSync } from 'node:fs';
import type { AckVector, ProvisionVector, SealVector } from '../vectors/generate.js';

const dir = new URL('../vectors/', import.meta.url);

export function loadVectors<T>(name: string): T[] {
  return JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as T[];
}

export const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export const sealVectors = (): SealVector[] => loadVectors<SealVector>('seal.json');
export const ackVectors = (): AckVector[] => loadVectors<AckVector>('ack.json');
export const provisionVectors = (): ProvisionVector[] => loadVectors<ProvisionVector>('provision.json');
