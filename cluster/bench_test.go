package cluster

import (
	"context"
	"encoding/binary"
	"testing"
)

// benchMessages: a typical result and trial, and a result over CompressAbove
// (a failed trial's stack trace) to time the zstd path.
func benchMessages(b *testing.B) []struct {
	name string
	m    Message
} {
	all := roundTripMessages(b)
	return []struct {
		name string
		m    Message
	}{
		{"result", all["result"]},
		{"trial", all["task"]},
		{"result-zstd", all["result-large"]},
		{"trial-zstd", all["task-large"]},
	}
}

// BenchmarkEncode reports wire-B: the encoded size, header included; the
// MB/s are of the decoded payload.
func BenchmarkEncode(b *testing.B) {
	for _, bm := range benchMessages(b) {
		b.Run(bm.name, func(b *testing.B) {
			wire, err := Encode(bm.m)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(binary.BigEndian.Uint32(wire[offDecodeLen:])))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Encode(bm.m); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(wire)), "wire-B")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, bm := range benchMessages(b) {
		b.Run(bm.name, func(b *testing.B) {
			wire, err := Encode(bm.m)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(binary.BigEndian.Uint32(wire[offDecodeLen:])))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(1, wire); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(wire)), "wire-B")
		})
	}
}

// BenchmarkInProcessRoundTrip: one encoded result from rank 1 to rank 0 and
// one back, per op.
func BenchmarkInProcessRoundTrip(b *testing.B) {
	wire, err := Encode(Message{Kind: KindResult, Result: typicalResult()})
	if err != nil {
		b.Fatal(err)
	}
	ts := NewInProcess(2)
	ctx := context.Background()
	done := make(chan error)
	go func() {
		for {
			_, msg, err := ts[1].Recv(ctx)
			if err != nil {
				done <- nil // closed at the end
				return
			}
			if err := ts[1].Send(0, msg); err != nil {
				done <- err
				return
			}
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		if err := ts[0].Send(1, wire); err != nil {
			b.Fatal(err)
		}
		if _, _, err := ts[0].Recv(ctx); err != nil {
			b.Fatal(err)
		}
	}
	ts[1].Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
