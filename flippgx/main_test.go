package flippgx_test

import (
	"testing"

	"github.com/londonaicentre/flip/internal/exampledb"
)

func TestMain(m *testing.M) { exampledb.Main(m) }
