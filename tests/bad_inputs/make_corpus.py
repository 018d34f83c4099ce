"""Writes the bad-input corpus beside this file: one folder per entry, one file per case.

    python tests/bad_inputs/make_corpus.py

The expected outcome of each file is in ``tests/test_bad_inputs.py``. Cases that are not files
(a missing path, a directory) are made by the test itself.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def interactions() -> dict[str, bytes]:
    h = "user_id,item_id,ts,rating\n"
    good = h + "1,10,1700000000,4\n2,10,1700000100,3.5\n"
    return {
        "empty.csv": b"",
        "header_only.csv": h.encode(),
        "undecodable.csv": good.encode() + b"3,\xff\xfe11,1700000200,4\n",
        "truncated.jsonl": (
            b'{"user_id": 1, "item_id": 10, "ts": 1700000000, "rating": 4}\n{"user_id": 2, "item_'
        ),
        "wrong_separator.csv": good.replace(",", ";").encode(),
        "wrong_separator.dat": b"1,10,4,1700000000\n2,10,3,1700000100\n",
        "missing_column.csv": b"user_id,item_id,rating\n1,10,4\n",
        "word_id.csv": (h + "alice,10,1700000000,4\n").encode(),
        "word_rating.csv": (h + "1,10,1700000000,good\n").encode(),
        "fractional_id.csv": (h + "1.5,10,1700000000,4\n").encode(),
        "iso_ts.csv": (h + "1,10,2024-05-01T10:00:00Z,4\n").encode(),
        "nan_rating.csv": (h + "1,10,1700000000,\n2,10,1700000100,nan\n").encode(),
        "inf_rating.csv": (h + "1,10,1700000000,inf\n").encode(),
        "negative_rating.csv": (h + "1,10,1700000000,-2\n").encode(),
        "negative_ts.csv": (h + "1,10,-5,4\n").encode(),
        "negative_id.csv": (h + "-3,10,1700000000,4\n").encode(),
        "out_of_range_id.csv": (h + "99999999999999999999,10,1700000000,4\n").encode(),
        "duplicate_rows.csv": (good + "1,10,1700000000,4\n").encode(),
        "corrupt.parquet": b"PAR1 this is not parquet",
        "bom.csv": "\ufeff".encode() + good.encode(),
    }


def entity_profiles() -> dict[str, bytes]:
    h = "entity_id,description,location,type,tags\n"
    good = h + "1,银行 贷款 服务,北京,国企,上市|出口\n2,软件 芯片 研发,上海,民营,\n"
    return {
        "empty.csv": b"",
        "header_only.csv": h.encode(),
        "undecodable.csv": good.encode() + b"3,\xff\xfe,x,y,\n",
        "truncated.jsonl": '{"entity_id": 1, "description": "银行"}\n{"entity_id": 2, "descr'.encode(),
        "wrong_separator.csv": good.replace(",", ";").encode(),
        "missing_column.csv": b"entity_id,location\n1,x\n",
        "word_id.csv": (h + "acme,银行,北京,国企,\n").encode(),
        "missing_id.csv": (h + ",银行,北京,国企,\n").encode(),
        "null_description.jsonl": b'{"entity_id": 1, "description": null}\n',
        "inf_id.csv": (h + "inf,银行,北京,国企,\n").encode(),
        "negative_id.csv": (h + "-1,银行,北京,国企,\n").encode(),
        "out_of_range_id.csv": (h + "99999999999999999999,银行,北京,国企,\n").encode(),
        "duplicate_rows.csv": (good + "1,银行 贷款 服务,北京,国企,上市|出口\n").encode(),
    }


def kb_documents() -> dict[str, bytes]:
    h = "doc_id,title,questions\n"
    good = (
        h + "1,reset password,how do i reset my password|forgot my password\n2,block card,my card was "
        "stolen|block my card\n"
    )
    return {
        "empty.csv": b"",
        "header_only.csv": h.encode(),
        "undecodable.csv": good.encode() + b"3,\xff\xfe,x\n",
        "truncated.jsonl": (
            b'{"doc_id": 1, "title": "reset password", "questions": ["how do i reset"]}\n{"doc_id": 2, "ti'
        ),
        "wrong_separator.csv": good.replace(",", ";").encode(),
        "missing_column.csv": b"doc_id,questions\n1,a|b\n",
        "word_id.csv": (h + "faq-1,reset password,a|b\nfaq-2,block card,c\n").encode(),
        "missing_id.csv": (h + ",reset password,a\n2,block card,c\n").encode(),
        "empty_title.csv": (h + "1,,a|b\n2,block card,c\n").encode(),
        "negative_id.csv": (h + "-1,reset password,a\n2,block card,c\n").encode(),
        "out_of_range_id.csv": (h + "99999999999999999999,reset password,a\n2,block card,c\n").encode(),
        "duplicate_rows.csv": (
            good + "1,reset password,how do i reset my password|forgot my password\n"
        ).encode(),
    }


def crm_events() -> dict[str, bytes]:
    h = "event_id,entity_type,entity_id,feature,line,event_ts,value,detail\n"

    def row(i, value="1", ts="2026-03-01T10:00:00Z", ent="u000001"):
        return f"e{i},user,{ent},login,01,{ts},{value},{{}}\n"

    good = h + row(1) + row(2)
    return {
        "empty.csv": b"",
        "header_only.csv": h.encode(),
        "undecodable.csv": good.encode() + b"e3,user,\xff\xfe,login,01,2026-03-01T10:00:00Z,1,{}\n",
        "truncated.jsonl": (
            b'{"event_id": "e1", "entity_type": "user", "entity_id": "u1", "feature": "login", '
            b'"line": "01"}\n'
            b'{"event_'
        ),
        "wrong_separator.csv": good.replace(",", ";").encode(),
        "missing_column.csv": good.replace(",value", "").replace(",1,{}", ",{}").encode(),
        "word_value.csv": (h + row(1, value="lots")).encode(),
        "bad_ts.csv": (h + row(1, ts="yesterday")).encode(),
        "nan_value.csv": (h + row(1, value="nan")).encode(),
        "inf_value.csv": (h + row(1, value="inf")).encode(),
        "negative_value.csv": (h + row(1, value="-4")).encode(),
        "missing_entity.csv": (h + row(1, ent="")).encode(),
        "duplicate_rows.csv": (good + row(1)).encode(),
    }


def feature_dictionary() -> dict[str, bytes]:
    h = "dim,id,name,explain,cal_sort,times,data_src,agg_rule\n"
    good = h + "user,1,login_cnt,logins per day,COUNT|SUM,3|7,login_cnt,sum\n"
    return {
        "empty.csv": b"",
        "header_only.csv": h.encode(),
        "undecodable.csv": good.encode() + b"user,2,\xff\xfe,x,COUNT,3,login_cnt,sum\n",
        "wrong_separator.csv": good.replace(",", ";").encode(),
        "missing_column.csv": b"dim,id,name\nuser,1,login_cnt\n",
        "word_id.csv": (h + "user,abc,login_cnt,x,COUNT,3,login_cnt,sum\n").encode(),
        "word_window.csv": (h + "user,1,login_cnt,x,COUNT,week,login_cnt,sum\n").encode(),
        "nan_function.csv": (h + "user,1,login_cnt,x,nan,3,login_cnt,sum\n").encode(),
        "inf_window.csv": (h + "user,1,login_cnt,x,COUNT,inf,login_cnt,sum\n").encode(),
        "negative_id.csv": (h + "user,-1,login_cnt,x,COUNT,3,login_cnt,sum\n").encode(),
        "out_of_range_id.csv": (h + "user,99999999999999999999,login_cnt,x,COUNT,3,login_cnt,sum\n").encode(),
        "duplicate_rows.csv": (
            good + "user,1,login_cnt,logins per day,COUNT|SUM,3|7,login_cnt,sum\n"
        ).encode(),
    }


ENTRIES = {
    "interactions": interactions,
    "entity_profiles": entity_profiles,
    "kb_documents": kb_documents,
    "crm_events": crm_events,
    "feature_dictionary": feature_dictionary,
}


if __name__ == "__main__":
    for entry, make in ENTRIES.items():
        d = HERE / entry
        d.mkdir(exist_ok=True)
        for name, data in make().items():
            (d / name).write_bytes(data)
        print(f"{entry}: {len(make())} files")
