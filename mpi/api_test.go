package mpi

import (
	"errors"
	"strings"
	"testing"
)

func TestLauncherSize(t *testing.T) {
	for _, c := range []struct {
		ompi, pmi string
		n         int
		env       string
	}{
		{"", "", 0, ""},
		{"4", "", 4, "OMPI_COMM_WORLD_SIZE"},
		{"", "16", 16, "PMI_SIZE"},
		{"2", "3", 2, "OMPI_COMM_WORLD_SIZE"},
		{"x", "0", 0, ""},
	} {
		t.Setenv("OMPI_COMM_WORLD_SIZE", c.ompi)
		t.Setenv("PMI_SIZE", c.pmi)
		if n, env := LauncherSize(); n != c.n || env != c.env {
			t.Errorf("OMPI_COMM_WORLD_SIZE=%q PMI_SIZE=%q: %d %q, want %d %q", c.ompi, c.pmi, n, env, c.n, c.env)
		}
	}
}

func TestThreadLevelString(t *testing.T) {
	got := []string{ThreadSingle.String(), ThreadFunneled.String(), ThreadSerialized.String(), ThreadMultiple.String(), ThreadLevel(7).String()}
	if strings.Join(got, " ") != "SINGLE FUNNELED SERIALIZED MULTIPLE ThreadLevel(7)" {
		t.Errorf("%q", got)
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Op: "Send to rank 7", Code: 15, Class: "MPI_ERR_TRUNCATE", Text: "MPI_ERR_TRUNCATE: message truncated"}
	if e.Error() != "mpi: Send to rank 7: MPI_ERR_TRUNCATE: message truncated" {
		t.Errorf("%q", e.Error())
	}
	err := countError("Send to rank 1", MaxCount+1, "bytes")
	if !errors.Is(err, ErrCountTooLarge) || err.Error() != "mpi: Send to rank 1: 2147483648 bytes: more elements than MPI's 32-bit count allows (2147483647)" {
		t.Errorf("%v", err)
	}
}
