package localadmin

// pipeSDDL is the protected DACL of the admin pipe: deny network logons
// (NU), allow SYSTEM (SY), built-in Administrators (BA) and the server's
// own account full access; everyone else gets nothing.
func pipeSDDL(serverSID string) string {
	return "D:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;" + serverSID + ")"
}
