package reports

// ExactFigures turns disclosure control off, so that the tests of what a
// report adds up can compare it with figures worked out by hand; the
// control itself is tested on its own (disclosure_test.go).
func ExactFigures(s *Service) { s.exact = true }
