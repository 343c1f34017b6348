// `npm run kernel`: compiles every kernel/<name>/kernel.c with Debian's arm-none-eabi-gcc into a
// position-independent Thumb-2 image linked at 0 (kernel/kernel.ld), kernel/<name>/<name>.bin, and
// writes kernel/<name>/image.ts (size, SHA-256, entry offsets, KERNEL_* constants). Both are
// committed, so `npm run build` needs no ARM toolchain; test/kernel/ rebuilds and compares the bytes.
import { execFileSync } from 'node:child_process';
import { crc32 } from 'node:zlib';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAsScript } from '../tools/run-as-script.js';

export const KERNEL_ROOT = fileURLToPath(new URL('.', import.meta.url));
export const CC = 'arm-none-eabi-gcc';

/** The flags of issue #12, plus: no memcpy/memset calls synthesised from loops, no unwind tables, warnings are errors. */
export const CFLAGS = [
  '-mcpu=cortex-m4', '-mthumb', '-Os', '-fpie', '-nostdlib', '-ffreestanding', '-std=c99',
  '-fno-tree-loop-distribute-patterns', '-fno-unwind-tables', '-fno-asynchronous-unwind-tables',
  '-Wall', '-Wextra', '-Werror',
];

/** Relocations that stay correct wherever the image is loaded (PC-relative); anything else (an absolute address) fails the build. */
const RELATIVE_RELOCATIONS = new Set(['R_ARM_REL32', 'R_ARM_THM_CALL', 'R_ARM_THM_JUMP24', 'R_ARM_THM_JUMP19', 'R_ARM_THM_JUMP11', 'R_ARM_THM_JUMP8', 'R_ARM_THM_PC8', 'R_ARM_THM_PC12']);

export interface KernelImage {
  name: string;
  bin: Buffer;
  sha256: string;
  /** CRC-32 (zlib, as Espruino's E.CRC32) of the image: what the factory and the firmware check on the device. */
  crc32: number;
  /** Entry name -> byte offset in the image (even; call offset | 1, Thumb). */
  entries: Record<string, number>;
  /** The kernel.c's numeric KERNEL_* macros without the prefix (sizes the caller must know, e.g. CTX_SIZE). */
  constants: Record<string, number>;
  /** The compiler that made it (first line of its --version). */
  compiler: string;
  /** The text of kernel/<name>/image.ts. */
  module: string;
}

/** The kernels: every folder of kernel/ with a kernel.c. */
export function kernelNames(): string[] {
  return readdirSync(KERNEL_ROOT, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(KERNEL_ROOT, d.name, 'kernel.c')))
    .map((d) => d.name)
    .sort();
}

/** The first line of `arm-none-eabi-gcc --version` (the exact compiler, which the bytes depend on), or undefined when it is not on PATH. */
export function compilerVersion(): string | undefined {
  try {
    return execFileSync(CC, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]!.trim();
  } catch {
    return undefined;
  }
}

const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Compiles and links one kernel in a temporary folder and returns its image; writes nothing in the repository. */
export function buildKernel(name: string): KernelImage {
  const compiler = compilerVersion();
  if (compiler === undefined) throw new Error(`${CC} is not on PATH (Debian: apt-get install gcc-arm-none-eabi)`);
  const work = mkdtempSync(join(tmpdir(), `kernel-${name}-`));
  try {
    const obj = join(work, 'kernel.o');
    const elf = join(work, 'kernel.elf');
    const bin = join(work, 'kernel.bin');
    const source = join(KERNEL_ROOT, name, 'kernel.c');
    run(CC, [...CFLAGS, '-c', source, '-o', obj]);
    const constants: Record<string, number> = {};
    for (const line of run(CC, [...CFLAGS, '-dM', '-E', source]).split('\n').sort()) {
      const m = /^#define KERNEL_(\w+) (\d+)$/.exec(line.trim());
      if (m) constants[m[1]!] = Number(m[2]);
    }
    // -q keeps the relocations in the linked file so they can be checked; --entry=0: a kernel has no start symbol.
    run(CC, ['-mcpu=cortex-m4', '-mthumb', '-nostdlib', '-Wl,-T,' + join(KERNEL_ROOT, 'kernel.ld'), '-Wl,--entry=0', '-Wl,-q', '-Wl,--no-warn-rwx-segments', obj, '-o', elf]);
    const absolute = run('arm-none-eabi-readelf', ['-r', '-W', elf])
      .split('\n')
      .map((line) => line.trim().split(/\s+/)[2])
      .filter((type): type is string => type !== undefined && type.startsWith('R_ARM_') && !RELATIVE_RELOCATIONS.has(type));
    if (absolute.length > 0) throw new Error(`kernel ${name}: relocations that are not PC-relative: ${[...new Set(absolute)].join(', ')}`);
    run('arm-none-eabi-objcopy', ['-O', 'binary', '--only-section=.text', elf, bin]);
    const entries: Record<string, number> = {};
    for (const line of run('arm-none-eabi-nm', ['-g', '--defined-only', elf]).split('\n')) {
      const m = /^([0-9a-f]+) T (\w+)$/.exec(line.trim());
      if (m) entries[m[2]!] = parseInt(m[1]!, 16);
    }
    if (Object.keys(entries).length === 0) throw new Error(`kernel ${name}: no entry points (functions that are not static)`);
    const image = readFileSync(bin);
    const sha256 = createHash('sha256').update(image).digest('hex');
    const crc = crc32(image) >>> 0;
    return { name, bin: image, sha256, crc32: crc, entries, constants, compiler, module: imageModule(name, image.length, sha256, crc, entries, constants, compiler) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function imageModule(name: string, size: number, sha256: string, crc: number, entries: Record<string, number>, constants: Record<string, number>, compiler: string): string {
  const lines = Object.keys(entries)
    .sort((a, b) => entries[a]! - entries[b]!)
    .map((e) => `    ${e}: ${entries[e]},`);
  return [
    `// Generated by \`npm run kernel\` (kernel/build.ts) from kernel/${name}/kernel.c, do not edit: the committed`,
    `// ${name}.bin's size, SHA-256, CRC-32, entry offsets (Thumb: E.nativeCall(base + offset | 1, ...)) and KERNEL_* constants.`,
    'export const IMAGE = {',
    `  file: '${name}.bin',`,
    `  size: ${size},`,
    `  sha256: '${sha256}',`,
    `  crc32: ${crc},`,
    `  compiler: '${compiler}',`,
    '  entries: {',
    ...lines,
    '  },',
    '  constants: {',
    ...Object.keys(constants).map((c) => `    ${c}: ${constants[c]},`),
    '  },',
    '} as const;',
    '',
  ].join('\n');
}

/** The committed files of kernel `name`, as a fresh build would write them. */
export function kernelFiles(name: string): { bin: string; module: string } {
  return { bin: join(KERNEL_ROOT, name, `${name}.bin`), module: join(KERNEL_ROOT, name, 'image.ts') };
}

if (runAsScript(import.meta.url)) {
  for (const name of kernelNames()) {
    const image = buildKernel(name);
    const files = kernelFiles(name);
    writeFileSync(files.bin, image.bin);
    writeFileSync(files.module, image.module);
    console.log(`kernel/${name}/${name}.bin: ${image.bin.length} bytes, sha256 ${image.sha256}, entries ${JSON.stringify(image.entries)}`);
  }
}
