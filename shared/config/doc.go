// Package config reads the settings (README, "Configuration"), the same names for
// followupd and the Lambda functions, and checks every value: a bad one
// stops the process at start with a message naming the setting, and is
// never silently replaced by a default.
//
// It does not read the environment itself: main passes a lookup function
// (os.LookupEnv, or followupd's flags-then-environment lookup).
package config
