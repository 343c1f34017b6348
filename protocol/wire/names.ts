/** Storage file names and the info version, shared with protocol/device-file.ts (checked by test). */
export const DEVICE_FILE_NAME = 'sealpost.dev';
export const COUNTER_LOG_NAME = 'sealpost.ctr';
export const INFO_PROTOCOL_VERSION = 1;
