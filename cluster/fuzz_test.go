package cluster

import (
	"reflect"
	"testing"
)

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes to a
// message that decodes to the same thing.
func FuzzDecode(f *testing.F) {
	for _, m := range roundTripMessages(f) {
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte("NASD\x09"))
	f.Add(compressed(f, KindSetup, 5000, make([]byte, 5000)))
	for _, p := range payloadSeeds {
		f.Add(plain(Kind(p.kind), p.payload))
	}
	f.Fuzz(checkDecode)
}

// FuzzDecodePayload fuzzes what lies behind the checksum, which FuzzDecode
// rarely gets past: the payload goes into a correct header, zstd-compressed
// when asked.
func FuzzDecodePayload(f *testing.F) {
	for _, p := range payloadSeeds {
		f.Add(p.kind, false, []byte(p.payload))
		f.Add(p.kind, true, []byte(p.payload))
	}
	for _, m := range roundTripMessages(f) {
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		if b[offFlags] == 0 {
			f.Add(byte(m.Kind), false, b[HeaderSize:])
		}
	}
	f.Fuzz(func(t *testing.T, kind byte, zstd bool, payload []byte) {
		if zstd {
			checkDecode(t, compressed(t, Kind(kind), len(payload), payload))
		} else {
			checkDecode(t, plain(Kind(kind), string(payload)))
		}
	})
}

var payloadSeeds = []struct {
	kind    byte
	payload string
}{
	{byte(KindTask), `{"id":"t1","arch":{"space":"enas-macro","options":{"layers":2},"decisions":[0,4,1]},"seed":1}`},
	{byte(KindTask), `{"id":"t2","arch":{"space":"nas","options":{"layers":1,"filter_sizes":[3]},"decisions":[0,0,0,1]},"seed":18446744073709551615,"epochs":2}`},
	{byte(KindResult), `{"trial":"t1","status":"diverged","reward":0,"val_acc":[],"best_val_acc":0,"params":0,"flops":0,"rank":1,"host":"","start":"2026-01-02T03:04:05+01:00","end":"0001-01-01T00:00:00Z"}`},
	{byte(KindResult), `{"trial":"t\u00e9","status":"ok","reward":-1.5e-300,"test_acc":null,"reason":"\ud800","params":-1,"flops":9223372036854775807,"rank":0,"host":"h","start":"2026-01-02T03:04:05.999999999-23:59","end":"9999-12-31T23:59:59Z","best_val_acc":1}`},
	{byte(KindSetup), "x"},
	{byte(KindTask), `{"id":"t3","arch":{"space":"nas","options":{"layers":1},"decisions":[0,0,0,1]},"seed":3,"epochs":4,"report":true}`},
	{byte(KindProgress), `{"trial":"t1","epoch":2,"val_acc":0.4375}`},
	{byte(KindProgress), `{"trial":"t\u00e9","epoch":9223372036854775807,"val_acc":-1e-300}`},
	{byte(KindDecision), `{"trial":"t1","stop":true}`},
	{byte(KindDecision), `{"trial":"t1","stop":false}`},
	{byte(KindDecision), `{"trial":"t1"}`},
}

func checkDecode(t *testing.T, b []byte) {
	m, err := Decode(1, b)
	if err != nil {
		return
	}
	again, err := Encode(m)
	if err != nil {
		t.Fatalf("decoded %+v, which does not encode: %v", m, err)
	}
	m2, err := Decode(1, again)
	if err != nil {
		t.Fatalf("re-encoded message does not decode: %v", err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Fatalf("re-encoding changed the message:\nfirst  %+v\nsecond %+v", m, m2)
	}
}
