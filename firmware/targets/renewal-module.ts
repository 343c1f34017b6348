// The key-renewal Storage module (docs/firmware.md, "Key renewal on the
// device"): firmware/renewal.ts built on its own (bench/renewal-module.ts,
// tools to come in the firmware build) into a file a board `require`s while a
// renewal runs and drops after (Modules.removeCached). Its exports are the
// module's: scan (boot: the renewal records of the counter log) and start.
import { scan, start } from '../renewal.js';

declare const exports: { scan: typeof scan; start: typeof start };
exports.scan = scan;
exports.start = start;
