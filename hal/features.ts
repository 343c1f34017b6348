// Build-time switches of the firmware. Under Node (the simulator, tests) the
// values below hold; the firmware build (rollup.config.mjs, plugin
// `features`) rewrites this module per bundle, and terser drops every
// branch a false switch guards, closures and all, so a board bundle carries
// no byte of a feature its build leaves out.
//
// RENEWAL: key renewal (firmware/renewal.ts and the device's hook for it).
// No board bundle has it yet: the renewal code runs as a Storage module
// loaded on demand (docs/firmware.md, "Key renewal on the device"), which
// is not built for the boards yet; until then their bundles keep their
// byte budget and a board device ignores ANNOUNCE (it stays on its key).
export const RENEWAL: boolean = true;
