package config

// Scoped is the config reduced to what the selected policies use: their
// issuers, their API keys and their credential sources. Nothing another
// function's policy names can change what this workload reads or accepts.
func (c *ProxyConfig) Scoped(selected []*Policy) *ProxyConfig {
	out := *c
	out.Policies = make([]Policy, 0, len(selected))
	issuers, keys, allKeys := map[string]bool{}, map[string]bool{}, false
	for _, p := range selected {
		out.Policies = append(out.Policies, *p)
		for _, n := range p.Authentication.Issuers {
			issuers[n] = true
		}
		if ak := p.Authentication.APIKeys; ak != nil {
			allKeys = allKeys || len(ak.Keys) == 0
			for _, k := range ak.Keys {
				keys[k] = true
			}
		}
	}
	out.Issuers = nil
	for _, is := range c.Issuers {
		if issuers[is.Name] {
			out.Issuers = append(out.Issuers, is)
		}
	}
	out.APIKeys.Keys = nil
	for _, k := range c.APIKeys.Keys {
		if allKeys || keys[k.Name] {
			out.APIKeys.Keys = append(out.APIKeys.Keys, k)
		}
	}
	return &out
}
