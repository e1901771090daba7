package pgvalue

// Built-in types: their OIDs are fixed in every Postgres since 9.x, so they
// need no catalog lookup.

// builtinScalar reports how a built-in non-array type decodes.
func builtinScalar(oid uint32) (kind, bool) {
	switch oid {
	case 20, 21, 23, 26: // int8, int2, int4, oid
		return kindInt, true
	case 700, 701: // float4, float8
		return kindFloat, true
	case 1700: // numeric
		return kindNumeric, true
	case 16: // bool
		return kindBool, true
	case 17: // bytea
		return kindBytea, true
	case 114, 3802: // json, jsonb
		return kindJSON, true
	case 1184: // timestamptz
		return kindTimestamptz, true
	case 1114: // timestamp
		return kindTimestamp, true
	case 1186: // interval
		return kindInterval, true
	case 18, 19, 22, 24, 25, 27, 28, 29, 30, 142, 194, 600, 601, 602, 603, 604, 628, 650, 705, 718,
		774, 790, 829, 869, 1033, 1042, 1043, 1082, 1083, 1266, 1560, 1562, 1790, 2202, 2203,
		2204, 2205, 2206, 2950, 2970, 3220, 3614, 3615, 3642, 3734, 3769, 3904, 3906, 3908, 3910,
		3912, 3926, 4072, 4089, 4096, 4191, 4451, 4532, 4533, 4534, 4535, 4536, 5038, 5069:
		// char, name, int2vector, regproc, text, tid, xid, cid, oidvector, xml,
		// pg_node_tree, point, lseg, path, box, polygon, line, cidr, unknown,
		// circle, macaddr8, money, macaddr, inet, aclitem, bpchar, varchar,
		// date, time, timetz, bit, varbit, refcursor, regprocedure,
		// regoper, regoperator, regclass, regtype, uuid, txid_snapshot, pg_lsn,
		// tsvector, tsquery, gtsvector, regconfig, regdictionary, the range and
		// multirange types, jsonpath, regnamespace, regrole, regcollation,
		// pg_snapshot, xid8: their Postgres text.
		return kindText, true
	}
	return 0, false
}

// builtinArray returns the element type and delimiter of a built-in array
// type (pg_type.typelem and the element's typdelim).
func builtinArray(oid uint32) (elem uint32, delim byte, ok bool) {
	switch oid {
	case 143: // _xml
		return 142, ',', true
	case 199: // _json
		return 114, ',', true
	case 210: // _pg_type
		return 71, ',', true
	case 270: // _pg_attribute
		return 75, ',', true
	case 271: // _xid8
		return 5069, ',', true
	case 272: // _pg_proc
		return 81, ',', true
	case 273: // _pg_class
		return 83, ',', true
	case 629: // _line
		return 628, ',', true
	case 651: // _cidr
		return 650, ',', true
	case 719: // _circle
		return 718, ',', true
	case 775: // _macaddr8
		return 774, ',', true
	case 791: // _money
		return 790, ',', true
	case 1000: // _bool
		return 16, ',', true
	case 1001: // _bytea
		return 17, ',', true
	case 1002: // _char
		return 18, ',', true
	case 1003: // _name
		return 19, ',', true
	case 1005: // _int2
		return 21, ',', true
	case 1006: // _int2vector
		return 22, ',', true
	case 1007: // _int4
		return 23, ',', true
	case 1008: // _regproc
		return 24, ',', true
	case 1009: // _text
		return 25, ',', true
	case 1010: // _tid
		return 27, ',', true
	case 1011: // _xid
		return 28, ',', true
	case 1012: // _cid
		return 29, ',', true
	case 1013: // _oidvector
		return 30, ',', true
	case 1014: // _bpchar
		return 1042, ',', true
	case 1015: // _varchar
		return 1043, ',', true
	case 1016: // _int8
		return 20, ',', true
	case 1017: // _point
		return 600, ',', true
	case 1018: // _lseg
		return 601, ',', true
	case 1019: // _path
		return 602, ',', true
	case 1020: // _box
		return 603, ';', true
	case 1021: // _float4
		return 700, ',', true
	case 1022: // _float8
		return 701, ',', true
	case 1027: // _polygon
		return 604, ',', true
	case 1028: // _oid
		return 26, ',', true
	case 1034: // _aclitem
		return 1033, ',', true
	case 1040: // _macaddr
		return 829, ',', true
	case 1041: // _inet
		return 869, ',', true
	case 1115: // _timestamp
		return 1114, ',', true
	case 1182: // _date
		return 1082, ',', true
	case 1183: // _time
		return 1083, ',', true
	case 1185: // _timestamptz
		return 1184, ',', true
	case 1187: // _interval
		return 1186, ',', true
	case 1231: // _numeric
		return 1700, ',', true
	case 1263: // _cstring
		return 2275, ',', true
	case 1270: // _timetz
		return 1266, ',', true
	case 1561: // _bit
		return 1560, ',', true
	case 1563: // _varbit
		return 1562, ',', true
	case 2201: // _refcursor
		return 1790, ',', true
	case 2207: // _regprocedure
		return 2202, ',', true
	case 2208: // _regoper
		return 2203, ',', true
	case 2209: // _regoperator
		return 2204, ',', true
	case 2210: // _regclass
		return 2205, ',', true
	case 2211: // _regtype
		return 2206, ',', true
	case 2949: // _txid_snapshot
		return 2970, ',', true
	case 2951: // _uuid
		return 2950, ',', true
	case 3221: // _pg_lsn
		return 3220, ',', true
	case 3643: // _tsvector
		return 3614, ',', true
	case 3644: // _gtsvector
		return 3642, ',', true
	case 3645: // _tsquery
		return 3615, ',', true
	case 3735: // _regconfig
		return 3734, ',', true
	case 3770: // _regdictionary
		return 3769, ',', true
	case 3807: // _jsonb
		return 3802, ',', true
	case 3905: // _int4range
		return 3904, ',', true
	case 3907: // _numrange
		return 3906, ',', true
	case 3909: // _tsrange
		return 3908, ',', true
	case 3911: // _tstzrange
		return 3910, ',', true
	case 3913: // _daterange
		return 3912, ',', true
	case 3927: // _int8range
		return 3926, ',', true
	case 4073: // _jsonpath
		return 4072, ',', true
	case 4090: // _regnamespace
		return 4089, ',', true
	case 4097: // _regrole
		return 4096, ',', true
	case 4192: // _regcollation
		return 4191, ',', true
	case 5039: // _pg_snapshot
		return 5038, ',', true
	case 6150: // _int4multirange
		return 4451, ',', true
	case 6151: // _nummultirange
		return 4532, ',', true
	case 6152: // _tsmultirange
		return 4533, ',', true
	case 6153: // _tstzmultirange
		return 4534, ',', true
	case 6155: // _datemultirange
		return 4535, ',', true
	case 6157: // _int8multirange
		return 4536, ',', true
	}
	return 0, 0, false
}
