package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/cutover-dev/cutover/pkg/token"
)

// connFlags are the global flags that say where the controller is, how to
// trust it and how to prove who asks. Empty means not given.
type connFlags struct {
	controller string
	caFile     string
	tokenFile  string
}

// endpoint is what cutoverctl dials: flags win over environment variables,
// which win over the config file.
type endpoint struct {
	controller string
	// caFile is the PEM bundle that the controller's certificate must chain
	// to; "" means the system's roots.
	caFile string
	// token is the operator token; "" means none. Never printed.
	token string
	// tokenFrom says where token came from, for messages.
	tokenFrom string
	// otherConfig names the config file's controller when --controller or
	// CUTOVER_CONTROLLER chose another one, so that the file's token and CA
	// file were not used.
	otherConfig string
}

// resolveEndpoint works out the endpoint from the flags, the environment
// (getenv) and the config file cfg (read from cfgPath). The config file's
// token and ca-file belong to its controller: they are used only when the
// controller is that one, so that a token is never sent to a controller it
// was not given for. It returns warnings to print (a token file readable by
// others) and errors that never hold the token.
func resolveEndpoint(f connFlags, getenv func(string) string, cfg *config, cfgPath string) (endpoint, []string, error) {
	var e endpoint
	var warnings []string
	useConfig := true
	switch {
	case f.controller != "":
		e.controller = f.controller
	case getenv("CUTOVER_CONTROLLER") != "":
		e.controller = getenv("CUTOVER_CONTROLLER")
	case cfg.Controller != "":
		e.controller = cfg.Controller
	default:
		e.controller = defaultController
	}
	if cfg.Controller != "" && cfg.Controller != e.controller {
		useConfig = false
		e.otherConfig = cfg.Controller
	}

	switch {
	case f.caFile != "":
		e.caFile = f.caFile
	case getenv("CUTOVER_CA_FILE") != "":
		e.caFile = getenv("CUTOVER_CA_FILE")
	case useConfig:
		e.caFile = cfg.CAFile
	}

	var err error
	var warning string
	switch {
	case f.tokenFile != "":
		e.tokenFrom = "--token-file " + f.tokenFile
		e.token, warning, err = readTokenFile(f.tokenFile)
	case strings.TrimSpace(getenv("CUTOVER_TOKEN")) != "":
		e.tokenFrom = "CUTOVER_TOKEN"
		e.token = strings.TrimSpace(getenv("CUTOVER_TOKEN"))
	case getenv("CUTOVER_TOKEN_FILE") != "":
		e.tokenFrom = "CUTOVER_TOKEN_FILE " + getenv("CUTOVER_TOKEN_FILE")
		e.token, warning, err = readTokenFile(getenv("CUTOVER_TOKEN_FILE"))
	case useConfig && cfg.Token != "":
		e.tokenFrom = "config file " + cfgPath
		e.token = strings.TrimSpace(cfg.Token)
		if info, serr := os.Stat(cfgPath); serr == nil {
			warning = exposed(cfgPath, info)
		}
	case useConfig && cfg.TokenFile != "":
		e.tokenFrom = "token-file " + cfg.TokenFile + " (config file " + cfgPath + ")"
		e.token, warning, err = readTokenFile(cfg.TokenFile)
	}
	if warning != "" {
		warnings = append(warnings, warning)
	}
	if err != nil {
		return endpoint{}, warnings, err
	}
	if e.token != "" {
		if _, err := token.ParseOperator(e.token); err != nil { // its errors never hold the secret
			return endpoint{}, warnings, fmt.Errorf("the token from %s is not an operator token: %v; "+
				"operator tokens come from `cutoverctl token create` or the controller's <data-dir>/bootstrap.token", e.tokenFrom, err)
		}
	}
	return e, warnings, nil
}

// readTokenFile reads a token from path without its surrounding white
// space, and a warning when others may read the file. Its errors name the
// file, never its content.
func readTokenFile(path string) (tok, warning string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("read token file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", "", fmt.Errorf("read token file: %w", err)
	}
	if !info.Mode().IsRegular() && info.Mode()&os.ModeNamedPipe == 0 && info.Mode()&os.ModeCharDevice == 0 {
		return "", "", fmt.Errorf("token file %s is not a file", path)
	}
	if info.Mode().IsRegular() {
		warning = exposed(path, info)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4096)) // a token is 60 bytes
	if err != nil {
		return "", warning, fmt.Errorf("read token file %s: %w", path, err)
	}
	tok = strings.TrimSpace(string(data))
	if tok == "" {
		return "", warning, fmt.Errorf("token file %s is empty", path)
	}
	return tok, warning, nil
}

// dialOptions returns the TLS 1.3 transport that verifies the
// controller's certificate against e.caFile (or the system's roots) and
// its host name against e.controller, like grpcurl -cacert, and the
// bearer token sent with every request.
func (e endpoint) dialOptions() ([]grpc.DialOption, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS13}
	if e.caFile != "" {
		pem, err := os.ReadFile(e.caFile)
		if err != nil {
			return nil, fmt.Errorf("read the CA file (--ca-file, CUTOVER_CA_FILE): %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate; give the controller's <data-dir>/tls/ca.crt", e.caFile)
		}
		conf.RootCAs = pool
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(conf))}
	if e.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: e.token}))
	}
	return opts, nil
}

// bearer sends an operator token as "authorization: Bearer <token>" with
// every request, and only over TLS.
type bearer struct{ token string }

var _ credentials.PerRPCCredentials = bearer{}

// GetRequestMetadata returns the authorization header.
func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is true: the token never travels in clear.
func (bearer) RequireTransportSecurity() bool { return true }

// String names the token by its public id only, so that printing a
// bearer by mistake shows no secret.
func (b bearer) String() string { return "bearer token " + orDash(token.ID(b.token)) }

// GoString is String, for %#v.
func (b bearer) GoString() string { return b.String() }
