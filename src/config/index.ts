export {
  CONFIG_FILE_ENV,
  type ConfigLogFormat,
  type ConfigLogLevel,
  type ConfigSources,
  defaultConfig,
  loadConfig,
  type OverrideValue,
  type SluiceConfig,
} from './config.js';
export {
  envVarName,
  isOptionKey,
  OPTION_KEYS,
  OPTIONS,
  type OptionKey,
  type OptionSpec,
  type OptionType,
  optionSpec,
} from './options.js';
export { suggestKey } from './suggest.js';
export {
  formatDuration,
  formatMemorySize,
  type ParseResult,
  parseDuration,
  parseMemorySize,
  tryParseDuration,
  tryParseMemorySize,
} from './units.js';
export { MASK } from './values.js';
