package verify

// Stage is a step of one connection attempt, in the order a connection goes
// through them. Errors (Error.Stage, and the root package's ConnectError),
// refusal events, progress logs and the pgsecure command all name stages
// with these values. The string is the stage's name in messages and log
// attributes.
type Stage string

// The stages of one connection attempt, in order.
const (
	// StageConfig is before any network traffic: the configuration of this
	// connection attempt (as hooks left it) is checked.
	StageConfig Stage = "before connecting"
	// StageTCP is the TCP connection to the server.
	StageTCP Stage = "TCP connect"
	// StageTLSRequest is PostgreSQL's SSLRequest and the server's answer
	// ('S' or 'N').
	StageTLSRequest Stage = "TLS request"
	// StageTLSHandshake is the TLS handshake and the verification of the
	// server's certificate (chain, host name, pins, revocation), before any
	// credential is sent.
	StageTLSHandshake Stage = "TLS handshake"
	// StageAuth is authentication: the method the server asks for, and the
	// server's answer to the credentials.
	StageAuth Stage = "authentication"
	// StageServerCheck is the server-side proof after authentication
	// (channel binding, or the server's own view of the connection).
	StageServerCheck Stage = "server check"
)

var stageOrder = []Stage{StageConfig, StageTCP, StageTLSRequest, StageTLSHandshake, StageAuth, StageServerCheck}

// String returns the stage's name.
func (s Stage) String() string { return string(s) }

// Before reports whether s comes before t in a connection attempt. An
// unknown stage comes before none and after none.
func (s Stage) Before(t Stage) bool {
	i, j := stageIndex(s), stageIndex(t)
	return i >= 0 && j >= 0 && i < j
}

func stageIndex(s Stage) int {
	for i, st := range stageOrder {
		if st == s {
			return i
		}
	}
	return -1
}
