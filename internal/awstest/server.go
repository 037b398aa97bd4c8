// Package awstest is a test double for AWS Secrets Manager: an httptest TLS
// server that speaks the AWS JSON 1.1 protocol for GetSecretValue only.
//
// It exists because the real service cannot run in a test. It is a test double,
// not a mock of the SDK: tests drive the real aws-sdk-go-v2 client against it.
// Every request's SigV4 signature is re-computed with aws/signer/v4 from the
// server's own copy of the static test credentials; a request whose signature
// does not match is answered with InvalidSignatureException (HTTP 400), an
// unknown access key with UnrecognizedClientException, as AWS does.
package awstest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Stage labels used by Secrets Manager rotation.
const (
	Current = "AWSCURRENT"
	Pending = "AWSPENDING"
)

// Account is the account id in every ARN the server hands out.
const Account = "123456789012"

// Version is one version of a secret. Stages are its staging labels; putting
// a version moves its labels away from the secret's other versions.
type Version struct {
	ID     string
	Stages []string
	String string // returned as SecretString when Binary is nil
	Binary []byte // returned as SecretBinary when not nil
}

// Request is what a GetSecretValue request asked for (after its signature
// was checked).
type Request struct {
	SecretID     string
	VersionID    string
	VersionStage string
}

type fault struct {
	status int
	code   string
	body   string // a raw 200 answer when code is empty
}

// Server is a running test double. Its methods are safe for concurrent use.
type Server struct {
	// URL is the https base endpoint to give the SDK (BaseEndpoint).
	URL string

	ts     *httptest.Server
	creds  aws.Credentials
	region string

	mu       sync.Mutex
	secrets  map[string][]Version // by name
	faults   []fault
	requests []Request
	received int
}

// New starts a server that accepts requests signed with creds for region and
// stops it when the test ends.
func New(t testing.TB, creds aws.Credentials, region string) *Server {
	t.Helper()
	s := &Server{creds: creds, region: region, secrets: map[string][]Version{}}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// Handshakes cut short when the server closes at the end of a test are
	// expected; every real failure surfaces as the client's error.
	s.ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.ts.StartTLS()
	t.Cleanup(s.ts.Close)
	s.URL = s.ts.URL
	return s
}

// HTTPClient returns a client that trusts the server's certificate (and
// nothing else); TLS verification stays on.
func (s *Server) HTTPClient() *http.Client { return s.ts.Client() }

// CAPEM returns the server certificate in PEM, for AWS_CA_BUNDLE.
func (s *Server) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ts.Certificate().Raw})
}

// Config returns an aws.Config for the real SDK that talks to this server with
// creds, and whose standard retryer does not sleep between attempts.
func (s *Server) Config(creds aws.Credentials) aws.Config {
	return aws.Config{
		Region:       s.region,
		Credentials:  credentials.StaticCredentialsProvider{Value: creds},
		HTTPClient:   s.HTTPClient(),
		BaseEndpoint: aws.String(s.URL),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		},
	}
}

// ARN returns the ARN the server gives the secret called name.
func (s *Server) ARN(name string) string {
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-AbCdEf", s.region, Account, name)
}

// Put adds (or replaces, by ID) a version of the secret called name.
func (s *Server) Put(name string, v Version) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var kept []Version
	for _, old := range s.secrets[name] {
		if old.ID == v.ID {
			continue
		}
		old.Stages = slices.DeleteFunc(slices.Clone(old.Stages), func(st string) bool { return slices.Contains(v.Stages, st) })
		kept = append(kept, old)
	}
	s.secrets[name] = append(kept, v)
}

// Fail makes the next n signed requests fail with the given HTTP status and
// AWS error code (e.g. 400 "ThrottlingException", 503 "ServiceUnavailable").
func (s *Server) Fail(n, status int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status: status, code: code})
	}
}

// Garble makes the next signed request get HTTP 200 with body as it is, for
// responses the SDK cannot decode.
func (s *Server) Garble(body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{status: http.StatusOK, body: body})
}

// Received counts every request that reached the server, signed or not.
func (s *Server) Received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received
}

// Requests returns the correctly signed GetSecretValue requests, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.received++
	s.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", "unreadable body")
		return
	}
	if status, code, msg := s.verify(r, body); code != "" {
		writeError(w, status, code, msg)
		return
	}
	if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" ||
		r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "only GetSecretValue is served")
		return
	}
	var in struct{ SecretId, VersionId, VersionStage string }
	if err := json.Unmarshal(body, &in); err != nil || in.SecretId == "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", "SecretId is required")
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{in.SecretId, in.VersionId, in.VersionStage})
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		s.mu.Unlock()
		if f.code == "" {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			_, _ = io.WriteString(w, f.body)
			return
		}
		writeError(w, f.status, f.code, "injected fault")
		return
	}
	name, v, ok := s.lookup(in.SecretId, in.VersionId, in.VersionStage)
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value.")
		return
	}
	out := map[string]any{
		"ARN": s.ARN(name), "Name": name, "VersionId": v.ID, "VersionStages": v.Stages,
		"CreatedDate": 1.7e9,
	}
	if v.Binary != nil {
		out["SecretBinary"] = v.Binary // base64, as the protocol wants
	} else {
		out["SecretString"] = v.String
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// lookup finds a version by id or stage; s.mu must be held.
func (s *Server) lookup(id, versionID, stage string) (string, Version, bool) {
	name := id
	for n := range s.secrets {
		if s.ARN(n) == id {
			name = n
		}
	}
	if versionID == "" && stage == "" {
		stage = Current
	}
	for _, v := range s.secrets[name] {
		if (versionID == "" || v.ID == versionID) && (stage == "" || slices.Contains(v.Stages, stage)) {
			return name, v, true
		}
	}
	return "", Version{}, false
}

// verify re-computes the SigV4 signature; it returns an AWS error code when
// the request must be refused.
func (s *Server) verify(r *http.Request, body []byte) (int, string, string) {
	const bad = "InvalidSignatureException"
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ")
	if !ok {
		return http.StatusBadRequest, "MissingAuthenticationTokenException", "request is not signed with SigV4"
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(auth, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[0] != s.creds.AccessKeyID {
		return http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid."
	}
	if scope[2] != s.region || scope[3] != "secretsmanager" {
		return http.StatusBadRequest, bad, "Credential should be scoped to the right region and service."
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	for _, must := range []string{"host", "x-amz-date", "x-amz-target"} {
		if !slices.Contains(signed, must) {
			return http.StatusBadRequest, bad, "header " + must + " must be signed"
		}
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return http.StatusBadRequest, bad, "bad X-Amz-Date"
	}
	again, err := http.NewRequest(r.Method, "https://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return http.StatusBadRequest, bad, "bad request line"
	}
	again.Host = r.Host
	if !slices.Contains(signed, "content-length") {
		again.ContentLength = 0
	}
	for _, h := range signed {
		if h != "host" && h != "content-length" {
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(r.Context(), s.creds, again, hex.EncodeToString(sum[:]), "secretsmanager", s.region, when)
	if err != nil || !hmac.Equal([]byte(again.Header.Get("Authorization")), []byte(r.Header.Get("Authorization"))) {
		return http.StatusBadRequest, bad, "The request signature we calculated does not match the signature you provided."
	}
	return 0, "", ""
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

// IsolateEnv makes the SDK's standard configuration (config.LoadDefaultConfig)
// see only creds, from the AWS_* environment variables, and trust only the
// CA bundle in caFile (none when empty): no shared files, profile, region,
// endpoint override or instance metadata of the machine running the test.
func IsolateEnv(t testing.TB, creds aws.Credentials, caFile string) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY": creds.SecretAccessKey,
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "",
		"AWS_CA_BUNDLE": caFile,
	} {
		t.Setenv(k, v)
	}
}
