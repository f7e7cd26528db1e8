"""Call recordings at the data centre (docs/capture.md, "Data centre").

ingest.py     .ccr batches from the landing area, through datacenter.ingest.intake
batch.py      the batch's tar, read as a stream with caps
manifest.py   its manifest and each recording's metadata, checked
vault.py      audio at rest: AES-256-GCM in chunks, readable at any offset
linking.py    a recording to its call by time and numbers, in either order of arrival
access.py     who may play and download; each tenant's policy
retention.py  deleting audio past a tenant's retention period
orphans.py    sweeping files no recording names (an interrupted ingest's)
stored.py     the read model behind TenantScope.recordings
"""
