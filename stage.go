package pgsecure

import "github.com/pgsecure/pgsecure/verify"

// Stage is a step of one connection attempt (see verify.Stage): errors,
// events and the pgsecure command name stages with its values.
type Stage = verify.Stage

// The stages of one connection attempt, in order (see verify.Stage).
const (
	StageConfig       = verify.StageConfig
	StageTCP          = verify.StageTCP
	StageTLSRequest   = verify.StageTLSRequest
	StageTLSHandshake = verify.StageTLSHandshake
	StageAuth         = verify.StageAuth
	StageServerCheck  = verify.StageServerCheck
)
