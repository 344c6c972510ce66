// Package model holds the controller's domain types: environments,
// applications, releases, deployments with their per-agent progress and
// history, agents, tokens, enrollments and audit records, with the rules
// that belong to a single value (a state is final or not). The services
// (deployment, catalog, auth, audit, fleet, transfer) work on these types;
// the stores (controlplane/store on bbolt) keep them and decide how they
// are encoded, so that nothing here knows about a file format.
//
// The JSON tags on these types are no longer how anything is stored: they
// spell schema 5's encoding, which controlplane/store's migration 0006
// still decodes through them. Leave them as they are; new fields need none.
package model
