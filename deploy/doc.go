// Package deploy holds no code: this directory carries what an operator
// installs beside the binaries (systemd units in systemd/, example config
// files in config/, a Prometheus scrape config and alerting rules in
// prometheus/) and the install guide, README.md.
//
// Its tests check those files with the real tools: systemd-analyze verify and
// systemd-analyze security on the units, promtool check config, check rules
// and test rules on the Prometheus files, and pkg/flagfile on the config
// files. A missing tool skips its test, except when CI=true, where it fails.
package deploy
