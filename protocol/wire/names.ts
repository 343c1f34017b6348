// Storage file names, the one home for them: the factory writes these files,
// the firmware and the simulation read them (at most 28 characters on Espruino).
export const DEVICE_FILE_NAME = 'sealpost.dev';
export const COUNTER_LOG_NAME = 'sealpost.ctr';
