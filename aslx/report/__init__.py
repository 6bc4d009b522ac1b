"""Reports a person looks at: pictures of clips (``python -m aslx.report clip``)."""
