/** The package version, reported in `initialize` and `--version`. A test keeps it equal to package.json. */
export const VERSION = '0.1.0';
