package testutil

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// saslBody is an AuthenticationSASL body offering mechs.
func saslBody(mechs ...string) []byte {
	out := binary.BigEndian.AppendUint32(nil, 10)
	for _, m := range mechs {
		out = append(append(out, m...), 0)
	}
	return append(out, 0)
}

// initialBody is a SASLInitialResponse body.
func initialBody(mech, first string) []byte {
	out := append([]byte(mech), 0)
	out = binary.BigEndian.AppendUint32(out, uint32(len(first)))
	return append(out, first...)
}

func TestSCRAMRewriterMechanisms(t *testing.T) {
	t.Parallel()
	both := saslBody(SCRAMSHA256Plus, SCRAMSHA256)
	for _, tc := range []struct {
		name string
		opts SCRAMProxyOptions
		in   []byte
		want []byte
	}{
		{"relay", SCRAMProxyOptions{}, both, both},
		{"strip", SCRAMProxyOptions{StripPlus: true}, both, saslBody(SCRAMSHA256)},
		{"advertise", SCRAMProxyOptions{AdvertisePlus: true}, saslBody(SCRAMSHA256), both},
		{"advertise when offered", SCRAMProxyOptions{AdvertisePlus: true}, both, both},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &scramRewriter{proxy: &SCRAMProxy{}, opts: tc.opts, ex: &SCRAMExchange{}}
			assert.Equal(t, tc.want, r.mechanisms(tc.in))
		})
	}
}

func TestSCRAMRewriterClientMessages(t *testing.T) {
	t.Parallel()
	r := &scramRewriter{proxy: &SCRAMProxy{}, ex: &SCRAMExchange{},
		opts: SCRAMProxyOptions{Mechanism: SCRAMSHA256, GS2Header: GS2None, Binding: "biws"}}
	got, err := r.initialResponse(initialBody(SCRAMSHA256Plus, GS2Bound+"n=,r=nonce"))
	require.NoError(t, err)
	assert.Equal(t, initialBody(SCRAMSHA256, "n,,n=,r=nonce"), got)

	got, err = r.finalResponse([]byte("c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsAAAA,r=nonce,p=proof"))
	require.NoError(t, err)
	assert.Equal(t, "c=biws,r=nonce,p=proof", string(got))
	assert.Equal(t, SCRAMExchange{
		Chosen: SCRAMSHA256Plus, Forwarded: SCRAMSHA256, GS2: GS2Bound, GS2Forwarded: GS2None,
		Binding: "cD10bHMtc2VydmVyLWVuZC1wb2ludCwsAAAA", BindingForwarded: "biws",
	}, *r.ex)

	_, err = r.initialResponse(initialBody(SCRAMSHA256, "no header"))
	assert.Error(t, err, "a client-first message without a GS2 header is not relayed")
	_, err = r.finalResponse([]byte("r=nonce,p=proof"))
	assert.Error(t, err, "a client-final message without c= is not relayed")
}
